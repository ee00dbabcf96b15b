// workerd bench entry: POST {mode, alg, policy, jwk, issuer, tokens}; runs one
// decision per token and answers when done. The driver times whole requests
// from outside (workerd freezes clocks inside).
//
// Both sides do the same job for each token: take the Bearer token from the
// request's headers, verify it, check the route's scope (`read`, what the
// policy's `api-read` route asks), and produce the identity headers.
// Mode `parse` does only what both share (reading the job), so the driver
// can subtract it.
//
// DPoP modes take `[token, proof]` pairs: a token bound to the proof's key
// (`cnf.jkt`) sent as `Authorization: DPoP` with its `DPoP` proof.
// `erpgate-dpop` decides them; `jose-proof` does what a hand-written worker
// must add for DPoP (the proof's signature with its embedded key, `typ`,
// `iat`, `htm`, `htu`, `ath`, the key's thumbprint against `cnf.jkt`, the
// `jti` remembered); `jose-dpop` is that plus verifying the token; and
// `parse-dpop` is what all share.
import wasm from './erpgate_bg.wasm';
import * as jose from '../../tests/worker/node_modules/jose/dist/webapi/index.js';
import { createGate } from '../../src/adapters/js/index.js';

const gates = new Map();
const keys = new Map();
const PATH = '/api/domain/odata/Crm_Customers';

// jose's side: what a hand-written worker in front of ERP.net does.
async function joseDecide(key, job, headers) {
  const authorization = headers.get('authorization') ?? '';
  if (!authorization.startsWith('Bearer ')) return null;
  const { payload } = await jose.jwtVerify(authorization.slice(7), key, {
    issuer: job.issuer,
    audience: 'DomainAPI',
    typ: 'at+jwt',
    currentDate: new Date(job.nowMs),
    algorithms: [job.alg],
  });
  const scopes = Array.isArray(payload.scope) ? payload.scope : String(payload.scope ?? '').split(' ');
  if (!scopes.includes('read')) return null;
  const service = payload.sub === undefined;
  const set = [
    ['x-erp-subject', String(service ? payload.client_system_user : payload.sub)],
    ['x-erp-client-id', String(payload.client_id)],
    ['x-erp-db', String(service ? payload.client_db : payload.db)],
    ['x-erp-scopes', scopes.join(' ')],
    ['x-erp-token-kind', service ? 'service' : 'user'],
    ['x-erp-is-admin', String(payload.is_admin === 'true')],
    ['x-erp-user-type', String(service ? payload.client_system_user_type : payload.user_type)],
  ];
  return set;
}

const encoder = new TextEncoder();
const seenJti = new Set();

// jose's side of a DPoP proof (RFC 9449 §4.3), for a token whose `cnf.jkt`
// is `jkt`.
async function joseProof(job, token, proof, jkt) {
  const { payload, protectedHeader } = await jose.jwtVerify(proof, jose.EmbeddedJWK, {
    typ: 'dpop+jwt',
    algorithms: ['ES256'],
    currentDate: new Date(job.nowMs),
    maxTokenAge: 300,
  });
  if (payload.htm !== 'GET' || payload.htu !== job.origin + PATH) return false;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(token)));
  if (payload.ath !== jose.base64url.encode(digest)) return false;
  if ((await jose.calculateJwkThumbprint(protectedHeader.jwk, 'sha256')) !== jkt) return false;
  if (typeof payload.jti !== 'string' || seenJti.has(payload.jti)) return false;
  seenJti.add(payload.jti);
  return true;
}

async function gateFor(job) {
  let gate = gates.get(job.alg);
  if (!gate) {
    gate = await createGate(job.policy, { wasm, now: () => job.nowMs, logDecisions: false });
    gates.set(job.alg, gate);
  }
  return gate;
}

async function keyFor(job) {
  let key = keys.get(job.alg);
  if (!key) {
    key = await jose.importJWK(job.jwk, job.alg);
    keys.set(job.alg, key);
  }
  return key;
}

async function dpop(job) {
  let ok = 0;
  const dpopHeaders = ([t, p]) => new Headers([['authorization', `DPoP ${t}`], ['dpop', p]]);
  if (job.mode === 'parse-dpop') {
    for (const pair of job.tokens) if (dpopHeaders(pair).has('dpop')) ok++;
  } else if (job.mode === 'erpgate-dpop') {
    const gate = await gateFor(job);
    for (const pair of job.tokens) {
      const d = await gate.check('GET', PATH, dpopHeaders(pair), undefined, job.origin);
      if (d.allow && d.headers.set.length > 0) ok++;
    }
  } else {
    const key = await keyFor(job);
    for (const pair of job.tokens) {
      const headers = dpopHeaders(pair);
      const authorization = headers.get('authorization');
      const token = authorization.slice(5);
      if (job.mode === 'jose-proof') {
        if (await joseProof(job, token, headers.get('dpop'), job.jkt)) ok++;
        continue;
      }
      const { payload } = await jose.jwtVerify(token, key, {
        issuer: job.issuer,
        audience: 'DomainAPI',
        typ: 'at+jwt',
        currentDate: new Date(job.nowMs),
        algorithms: [job.alg],
      });
      if (await joseProof(job, token, headers.get('dpop'), payload.cnf?.jkt)) ok++;
    }
  }
  return ok;
}

export default {
  async fetch(request) {
    const job = await request.json();
    let ok = 0;
    if (job.mode.endsWith('dpop') || job.mode === 'jose-proof') {
      ok = await dpop(job);
    } else if (job.mode === 'parse') {
      for (const t of job.tokens) if (new Headers([['authorization', `Bearer ${t}`]]).has('authorization')) ok++;
    } else if (job.mode === 'jose') {
      const key = await keyFor(job);
      for (const t of job.tokens) {
        const set = await joseDecide(key, job, new Headers([['authorization', `Bearer ${t}`]]));
        if (set) ok++;
      }
    } else {
      const gate = await gateFor(job);
      for (const t of job.tokens) {
        const d = await gate.check('GET', PATH, new Headers([['authorization', `Bearer ${t}`]]));
        if (d.allow && d.headers.set.length > 0) ok++;
      }
    }
    return Response.json({ ok });
  },
};

// workerd bench entry: POST {mode, alg, policy, jwk, issuer, tokens}; runs one
// decision per token and answers when done. The driver times whole requests
// from outside (workerd freezes clocks inside).
//
// Both sides do the same job for each token: take the Bearer token from the
// request's headers, verify it, check the route's scope (`read`, what the
// policy's `api-read` route asks), and produce the identity headers.
// Mode `parse` does only what both share (reading the job), so the driver
// can subtract it.
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

export default {
  async fetch(request) {
    const job = await request.json();
    let ok = 0;
    if (job.mode === 'parse') {
      for (const t of job.tokens) if (new Headers([['authorization', `Bearer ${t}`]]).has('authorization')) ok++;
    } else if (job.mode === 'jose') {
      let key = keys.get(job.alg);
      if (!key) {
        key = await jose.importJWK(job.jwk, job.alg);
        keys.set(job.alg, key);
      }
      for (const t of job.tokens) {
        const set = await joseDecide(key, job, new Headers([['authorization', `Bearer ${t}`]]));
        if (set) ok++;
      }
    } else {
      let gate = gates.get(job.alg);
      if (!gate) {
        gate = await createGate(job.policy, { wasm, now: () => job.nowMs, logDecisions: false });
        gates.set(job.alg, gate);
      }
      for (const t of job.tokens) {
        const d = await gate.check('GET', PATH, new Headers([['authorization', `Bearer ${t}`]]));
        if (d.allow && d.headers.set.length > 0) ok++;
      }
    }
    return Response.json({ ok });
  },
};

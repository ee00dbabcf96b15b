// erpgate for JavaScript edge workers. The wasm core decides; this layer only
// performs what the core asks for: an HTTP call (introspection, JWKS,
// revocation feed) with fetch, or a signature check with WebCrypto.
import { initSync, Gate as WasmGate, clientAuthorization } from './pkg/erpgate.js';

const ALGORITHMS = {
  RS256: { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, verify: { name: 'RSASSA-PKCS1-v1_5' } },
  RS384: { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' }, verify: { name: 'RSASSA-PKCS1-v1_5' } },
  RS512: { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512' }, verify: { name: 'RSASSA-PKCS1-v1_5' } },
  PS256: { import: { name: 'RSA-PSS', hash: 'SHA-256' }, verify: { name: 'RSA-PSS', saltLength: 32 } },
  PS384: { import: { name: 'RSA-PSS', hash: 'SHA-384' }, verify: { name: 'RSA-PSS', saltLength: 48 } },
  PS512: { import: { name: 'RSA-PSS', hash: 'SHA-512' }, verify: { name: 'RSA-PSS', saltLength: 64 } },
  ES256: { import: { name: 'ECDSA', namedCurve: 'P-256' }, verify: { name: 'ECDSA', hash: 'SHA-256' } },
  EdDSA: { import: { name: 'Ed25519' }, verify: { name: 'Ed25519' } },
};

// A fixed Ed25519 public key, to probe whether this runtime's WebCrypto has it.
const ED25519_PROBE = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };

let initialised = false;

// WebCrypto keys imported for verification are kept by algorithm and the
// key's public material, never by kid alone: two issuers, or one JWKS after
// a rotation, may publish different keys under one kid. At most this many;
// the least recently used goes first.
const KEY_CACHE_MAX = 256;

function keyMaterial(jwk) {
  return [jwk.kty, jwk.crv, jwk.n, jwk.e, jwk.x, jwk.y].map((v) => v ?? '').join('.');
}

function b64urlDecode(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function probeHostCrypto() {
  const algs = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256'];
  try {
    await crypto.subtle.importKey('jwk', ED25519_PROBE, { name: 'Ed25519' }, false, ['verify']);
    algs.push('EdDSA');
  } catch {
    // The wasm core verifies EdDSA itself.
  }
  return algs;
}

/** A compiled policy with its caches; keep one per isolate. */
export class Gate {
  #gate;
  #options;
  #keys = new Map();

  #now;
  // The Authorization value for introspection and the feed, as the core
  // builds it (RFC 6749 §2.3.1): the same bytes the Envoy filter sends.
  #authorization = null;
  // Shadow-mode denials by reason code, for metrics.
  #shadowDenials = {};

  constructor(gate, options) {
    this.#gate = gate;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const c = options.clientCredentials;
    if (c) this.#authorization = clientAuthorization(c.clientId, c.clientSecret);
  }

  /** Counters for metrics: the core's, and `shadowDenials` by reason (what
   * enforcement would have refused in shadow mode). */
  stats() {
    return { ...JSON.parse(this.#gate.stats()), shadowDenials: { ...this.#shadowDenials } };
  }

  /** Seconds since each issuer's JWKS (by index) and the revocation feed
   * last arrived in this isolate: alert when they grow. */
  staleness() {
    return JSON.parse(this.#gate.staleness(this.#now()));
  }

  async #fetch(call) {
    const upstream = this.#options.upstreams?.[call.upstream];
    if (upstream === undefined) return { failed: true };
    const headers = new Headers(call.headers);
    if (call.clientAuth) {
      if (this.#authorization === null) return { failed: true };
      headers.set('authorization', this.#authorization);
    }
    if (call.authority) headers.set('host', call.authority);
    const init = { method: call.method, headers, signal: AbortSignal.timeout(call.timeoutMs) };
    if (call.method === 'POST') init.body = call.body;
    const doFetch = this.#options.fetch ?? fetch;
    try {
      const response = await doFetch(typeof upstream === 'string' ? upstream.replace(/\/$/, '') + call.path : upstream, init, call);
      return { status: response.status, body: await response.text() };
    } catch (e) {
      return e && (e.name === 'TimeoutError' || e.name === 'AbortError') ? { timeout: true } : { failed: true };
    }
  }

  async #verify(v) {
    const alg = ALGORITHMS[v.alg];
    if (!alg) return { failed: true };
    const cacheKey = v.alg + ':' + keyMaterial(v.jwk);
    let key = this.#keys.get(cacheKey);
    try {
      if (key) {
        this.#keys.delete(cacheKey);
      } else {
        const { alg: _ignored, ...jwk } = v.jwk;
        key = await crypto.subtle.importKey('jwk', jwk, alg.import, false, ['verify']);
        if (this.#keys.size >= KEY_CACHE_MAX) this.#keys.delete(this.#keys.keys().next().value);
      }
      this.#keys.set(cacheKey, key);
      const ok = await crypto.subtle.verify(alg.verify, key, b64urlDecode(v.signature), b64urlDecode(v.signingInput));
      return { verified: ok };
    } catch {
      // A key or signature WebCrypto cannot even parse does not verify.
      return { verified: false };
    }
  }

  /** Runs background work that is due: JWKS refreshes are awaited (a request
   * may need the keys), feed polls go to `waitUntil` when one is given. */
  async tick(ctx) {
    const due = JSON.parse(this.#gate.due(this.#now()));
    const work = due.map(async ({ id, call }) => {
      const outcome = await this.#fetch(call);
      this.#gate.complete(id, JSON.stringify(outcome), this.#now());
    });
    const jwks = due.map((d, i) => (d.call.purpose === 'jwks' ? work[i] : null)).filter(Boolean);
    const rest = due.map((d, i) => (d.call.purpose === 'jwks' ? null : work[i])).filter(Boolean);
    if (rest.length && ctx?.waitUntil) ctx.waitUntil(Promise.all(rest));
    else await Promise.all(rest);
    await Promise.all(jwks);
  }

  /** Runs due background work, then decides the request:
   * `{ allow, status, headers: {remove, set}, principal, response, reason,
   * enforced, wouldDeny, log }`. In shadow mode (`enforced: false`) a denial
   * comes back as an allow with `wouldDeny` and no header edits. */
  async decide(request, ctx) {
    await this.tick(ctx);
    const url = new URL(request.url);
    const pathAndQuery = url.pathname + url.search;
    // An OData $batch is decided on its inner requests: read (a copy of)
    // the body, at most one byte past what the core inspects.
    const limit = this.#gate.bodyLimit(request.method, pathAndQuery);
    const body = limit === undefined ? undefined : await readAtMost(request.clone(), limit + 1);
    return this.check(request.method, pathAndQuery, [...request.headers], body);
  }

  /** Decides from parts: `headers` is `[[name, value], …]`; `body` (a string
   * or bytes) is read only when the core asks for it. No background work. */
  async check(method, pathAndQuery, headers, body) {
    const limit = this.#gate.bodyLimit(method, pathAndQuery);
    let bytes;
    if (limit !== undefined) {
      const all = typeof body === 'string' ? new TextEncoder().encode(body) : new Uint8Array(body ?? []);
      bytes = all.subarray(0, limit + 1);
    }
    // Time inside the module (runtimes that coarsen timers report 0).
    let spent = 0;
    const timed = (run) => {
      const start = performance.now();
      const text = run();
      spent += performance.now() - start;
      return JSON.parse(text);
    };
    let step = timed(() => this.#gate.check(method, pathAndQuery, JSON.stringify(headers), bytes, this.#now()));
    while (step.type !== 'decision') {
      const outcome = step.type === 'call' ? await this.#fetch(step.call) : await this.#verify(step.verify);
      step = timed(() => this.#gate.resume(step.id, JSON.stringify(outcome), this.#now()));
    }
    this.#logDecision(step, spent);
    if (step.wouldDeny) {
      const reason = step.wouldDeny.reason;
      this.#shadowDenials[reason] = (this.#shadowDenials[reason] ?? 0) + 1;
    }
    return step;
  }

  /** One decision-log line (`erpgate.decision.v1`): to `console`, unless
   * `options.logDecisions` is false, and to `options.onDecision(line)`. */
  #logDecision(decision, spentMs) {
    const record = decision.log;
    if (!record) return;
    record.duration_us = Math.round(spentMs * 1000);
    const line = JSON.stringify(record);
    if (this.#options.logDecisions !== false) console.log(line);
    this.#options.onDecision?.(line);
  }

  /** The request to forward for an allow: client copies of identity headers
   * removed, verified ones set. */
  static forwardable(request, decision) {
    const headers = new Headers(request.headers);
    for (const name of decision.headers.remove) headers.delete(name);
    for (const [name, value] of decision.headers.set) headers.set(name, value);
    return new Request(request, { headers });
  }

  /** The local response for a denial, as the core mapped it. */
  static denial(decision) {
    return new Response(decision.response.body, { status: decision.response.status, headers: decision.response.headers });
  }
}

/** Up to `max` bytes of a request's body, reading no further. */
async function readAtMost(request, max) {
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks = [];
  let total = 0;
  while (total < max) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  await reader.cancel().catch(() => {});
  const out = new Uint8Array(Math.min(total, max));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, out.length - at);
    out.set(part, at);
    at += part.length;
    if (at >= out.length) break;
  }
  return out;
}

/**
 * Compiles a policy. Throws (with the offending field) on a bad policy.
 * options.wasm: the compiled erpgate_bg.wasm (a WebAssembly.Module, or bytes).
 * options.upstreams: { name: baseUrl } for the policy's upstreams.
 * options.clientCredentials: { clientId, clientSecret } for introspection and
 *   the revocation feed; take them from worker secrets, never the policy.
 * options.hostCrypto: true (default) to verify signatures with WebCrypto.
 * options.onDecision(line): receives each decision-log line (JSON text).
 * options.logDecisions: false to keep decision-log lines off `console`.
 */
export async function createGate(policy, options = {}) {
  if (!initialised) {
    initSync({ module: options.wasm });
    initialised = true;
  }
  const hostCrypto = options.hostCrypto === false ? [] : await probeHostCrypto();
  const text = typeof policy === 'string' ? policy : JSON.stringify(policy);
  const gate = new WasmGate(text, JSON.stringify({ hostCrypto }));
  return new Gate(gate, options);
}

/**
 * Wraps a worker handler: denials are answered as the core mapped them,
 * allowed requests reach `handler(request, env, ctx, decision)` with identity
 * headers set and client copies stripped. `configure(env)` returns the
 * createGate arguments `{ policy, ...options }`; it runs once per isolate.
 */
export function withGate(handler, configure) {
  let gate;
  return {
    async fetch(request, env, ctx) {
      if (!gate) {
        const { policy, ...options } = configure(env);
        gate = createGate(policy, options);
      }
      const g = await gate;
      const decision = await g.decide(request, ctx);
      if (!decision.allow) return Gate.denial(decision);
      return handler(Gate.forwardable(request, decision), env, ctx, decision);
    },
  };
}

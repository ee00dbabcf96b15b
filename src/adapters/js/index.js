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
// core's fingerprint of the key's public JWK, never by kid alone: two
// issuers, or one JWKS after a rotation, may publish different keys under
// one kid. At most this many; the least recently used goes first.
const KEY_CACHE_MAX = 256;

// Header names and values cross into the module as one string, name and
// value on alternate lines; Fetch forbids these characters in both.
const FORBIDDEN_IN_HEADER = /[\r\n\0]/;

function headerLines(headers) {
  // A Fetch `Headers` cannot hold them; anything else is checked.
  const trusted = typeof Headers !== 'undefined' && headers instanceof Headers;
  let text = '';
  for (const [name, value] of headers) {
    if (!trusted && (FORBIDDEN_IN_HEADER.test(name) || FORBIDDEN_IN_HEADER.test(value))) {
      throw new TypeError('a header name or value holds CR, LF or NUL');
    }
    text = text === '' ? name + '\n' + value : text + '\n' + name + '\n' + value;
  }
  return text;
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
  // The policy's route names (decisions give an index) and the identity
  // headers every allow removes.
  #routes;
  #strip;

  constructor(gate, options) {
    this.#gate = gate;
    this.#options = options;
    this.#routes = JSON.parse(gate.routes());
    this.#strip = JSON.parse(gate.strip());
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

  /** Checks the signature of pending step `id` (`V<id> <alg> <fingerprint>
   * <signing input length>`) with WebCrypto; `undefined` when it cannot
   * answer. */
  async #verify(id, head) {
    const [alg, fingerprint, inputLength] = head;
    const spec = ALGORITHMS[alg];
    const data = this.#gate.verifyData(id);
    if (!spec || !data) return undefined;
    const cacheKey = alg + ':' + fingerprint;
    let key = this.#keys.get(cacheKey);
    try {
      if (key) {
        this.#keys.delete(cacheKey);
      } else {
        const { alg: _ignored, ...jwk } = JSON.parse(this.#gate.verifyKey(id));
        key = await crypto.subtle.importKey('jwk', jwk, spec.import, false, ['verify']);
        if (this.#keys.size >= KEY_CACHE_MAX) this.#keys.delete(this.#keys.keys().next().value);
      }
      this.#keys.set(cacheKey, key);
      const at = Number(inputLength);
      return await crypto.subtle.verify(spec.verify, key, data.subarray(at), data.subarray(0, at));
    } catch {
      // A key or signature WebCrypto cannot even parse does not verify.
      return false;
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
   * `{ allow, status, route, fromCache, headers: {remove, set}, response,
   * reason, enforced, wouldDeny }`, and `principal` when
   * `options.principal` is true. In shadow mode (`enforced: false`) a denial
   * comes back as an allow with `wouldDeny` and no header edits. */
  async decide(request, ctx) {
    await this.tick(ctx);
    const url = new URL(request.url);
    const pathAndQuery = url.pathname + url.search;
    // An OData $batch is decided on its inner requests: (a copy of) the
    // body is read when the core asks, at most one byte past what it
    // inspects.
    return this.#run(request.method, pathAndQuery, request.headers, url.origin, (max) => readAtMost(request.clone(), max));
  }

  /** Decides from parts: `headers` is `[[name, value], …]` (or a `Headers`); `body` (a string
   * or bytes) is read only when the core asks for it; `origin`
   * (`https://host`) is where the request went, which DPoP proofs name.
   * No background work. */
  check(method, pathAndQuery, headers, body, origin) {
    return this.#run(method, pathAndQuery, headers, origin, (max) => {
      const all = typeof body === 'string' ? new TextEncoder().encode(body) : new Uint8Array(body ?? []);
      return all.subarray(0, max);
    });
  }

  /** Decides; `readBody(max)` gives at most `max` bytes of the body, and is
   * called only when the core must see it (`B<limit>`). */
  async #run(method, pathAndQuery, headers, origin, readBody) {
    const logging = this.#options.logDecisions !== false || this.#options.onDecision !== undefined;
    // Time inside the module (runtimes that coarsen timers report 0).
    let spent = 0;
    const timed = logging
      ? (run) => {
        const start = performance.now();
        const text = run();
        spent += performance.now() - start;
        return text;
      }
      : (run) => run();
    const lines = headerLines(headers);
    let step = timed(() => this.#gate.check(method, pathAndQuery, lines, undefined, this.#now(), origin));
    if (step.charCodeAt(0) === 66 /* B */) {
      const bytes = await readBody(Number(step.slice(1)) + 1);
      step = timed(() => this.#gate.check(method, pathAndQuery, lines, bytes, this.#now(), origin));
    }
    for (;;) {
      const type = step.charCodeAt(0);
      if (type === 67 /* C */) {
        const { id, call } = JSON.parse(step.slice(1));
        const outcome = await this.#fetch(call);
        step = timed(() => this.#gate.resume(id, JSON.stringify(outcome), this.#now()));
      } else if (type === 86 /* V */) {
        const head = step.slice(1).split(' ');
        const id = Number(head[0]);
        const valid = await this.#verify(id, head.slice(1));
        step = timed(() => this.#gate.resumeVerified(id, valid, this.#now()));
      } else {
        break;
      }
    }
    const decision = this.#decision(step);
    // Synchronously after the module decided: `last*` still speak of it.
    if (this.#options.principal) decision.principal = JSON.parse(this.#gate.lastPrincipal());
    if (logging) this.#logDecision(Math.round(spent * 1000));
    if (decision.wouldDeny) {
      const reason = decision.wouldDeny.reason;
      this.#shadowDenials[reason] = (this.#shadowDenials[reason] ?? 0) + 1;
    }
    return decision;
  }

  /** A decision from the module's text (see `Gate::step_text` in worker.rs). */
  #decision(step) {
    const type = step.charCodeAt(0);
    if (type === 68 /* D */) {
      const d = JSON.parse(step.slice(1));
      return { type: 'decision', allow: false, status: d.status, route: d.route, reason: d.reason, response: d.response };
    }
    if (type === 87 /* W */) {
      const [index, status, reason] = step.slice(1).split(' ');
      return {
        type: 'decision', allow: true, status: 200, route: this.#route(index), fromCache: false,
        enforced: false, wouldDeny: { status: Number(status), reason }, headers: { remove: [], set: [] },
      };
    }
    const lines = step.split('\n');
    const [flags, index, extra] = lines[0].split(' ');
    const removals = Number(extra);
    const remove = removals === 0 ? this.#strip : this.#strip.concat(lines.slice(1, 1 + removals));
    const set = [];
    for (let i = 1 + removals; i + 1 < lines.length; i += 2) set.push([lines[i], lines[i + 1]]);
    return {
      type: 'decision', allow: true, status: 200, route: this.#route(index),
      fromCache: flags.charCodeAt(1) === 49, enforced: flags.charCodeAt(2) === 49,
      wouldDeny: null, headers: { remove, set },
    };
  }

  #route(index) {
    return index === '-' ? null : this.#routes[Number(index)] ?? null;
  }

  /** One decision-log line (`erpgate.decision.v1`) for the last decision: to
   * `console`, unless `options.logDecisions` is false, and to
   * `options.onDecision(line)`. */
  #logDecision(durationUs) {
    const line = this.#gate.lastLog(durationUs);
    if (line === undefined) return;
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

  /** The local response for a denial (or the protected-resource metadata),
   * as the core made it. */
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
 * options.dpopNonceKey: the key DPoP server nonces are minted under
 *   (base64url, at least 32 random bytes; from a worker secret, the same in
 *   every isolate), required when the policy's `dpop.nonces` is on.
 * options.onDecision(line): receives each decision-log line (JSON text).
 * options.logDecisions: false to keep decision-log lines off `console`.
 * options.principal: true to have each decision carry the verified
 *   principal (JSON from the module; the identity headers carry it anyway).
 */
export async function createGate(policy, options = {}) {
  if (!initialised) {
    initSync({ module: options.wasm });
    initialised = true;
  }
  const hostCrypto = options.hostCrypto === false ? [] : await probeHostCrypto();
  const text = typeof policy === 'string' ? policy : JSON.stringify(policy);
  const settings = { hostCrypto };
  if (options.dpopNonceKey !== undefined) settings.dpopNonceKey = options.dpopNonceKey;
  const gate = new WasmGate(text, JSON.stringify(settings), crypto.getRandomValues(new Uint8Array(16)));
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

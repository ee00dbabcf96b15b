// The corpus harness shared by workerd and Node: runs prepared vectors through
// the real JS layer (createGate, fetch/WebCrypto plumbing) with upstream calls
// answered from the vector, and reports what it observed.
import { createGate, Gate } from '../../src/adapters/js/index.js';

function replyFor(queue, purpose) {
  const i = queue.findIndex((c) => c.purpose === purpose);
  if (i < 0) throw new Error(`engine asked for an unexpected ${purpose} call`);
  return queue.splice(i, 1)[0].reply;
}

function answer(reply) {
  if (reply === 'timeout') throw new DOMException('timed out', 'TimeoutError');
  if (reply === 'failed') throw new TypeError('connection refused');
  return new Response(reply.body, { status: reply.status });
}

export async function runVector(vector, wasm) {
  let now = 0;
  let queue = [];
  const calls = [];
  let logged = [];
  const gate = await createGate(vector.policy, {
    wasm,
    // Production default: signatures go to WebCrypto whatever the vector says;
    // decisions must not change.
    hostCrypto: true,
    dpopNonceKey: vector.dpopNonceKey ?? undefined,
    upstreams: new Proxy({}, { get: (_, name) => `http://${String(name)}.invalid` }),
    clientCredentials: { clientId: 'edge', clientSecret: 'secret' },
    now: () => now,
    logDecisions: false,
    onDecision: (line) => logged.push(line),
    fetch: async (_url, _init, call) => {
      calls.push(call.purpose);
      return answer(replyFor(queue, call.purpose));
    },
  });
  const observations = [];
  for (const step of vector.steps) {
    now = step.nowMs;
    if (step.background.length) {
      queue = [...step.background];
      await gate.tick();
      if (queue.length) throw new Error(`${queue.length} background replies unused`);
    }
    queue = [...step.calls];
    calls.length = 0;
    logged = [];
    const shadowBefore = gate.stats().shadowDenials;
    const d = await gate.check(step.method, step.path, step.headers, step.body, vector.origin);
    if (d.wouldDeny) {
      const reason = d.wouldDeny.reason;
      if (gate.stats().shadowDenials[reason] !== (shadowBefore[reason] ?? 0) + 1) {
        throw new Error(`shadow denial ${reason} not counted in stats()`);
      }
    }
    if (queue.length) throw new Error(`${queue.length} call replies unused`);
    // A local answer that is not a denial (the protected-resource metadata)
    // decides nothing: no log line.
    const answered = !d.allow && d.reason === 'protected_resource_metadata';
    if (logged.length !== (answered ? 0 : 1)) throw new Error(`${logged.length} decision-log lines for one decision`);
    const log = logged[0] ?? null;
    if (answered) {
      observations.push({
        status: d.status, reason: d.reason, forwarded: [], calls: [...calls],
        answer: d.response.body ? JSON.parse(d.response.body) : null, log,
      });
    } else if (d.allow) {
      const forwarded = step.headers
        .filter(([n]) => !d.headers.remove.includes(n.toLowerCase()))
        .map(([n, v]) => [n.toLowerCase(), v])
        .concat(d.headers.set);
      observations.push({
        status: 200, forwarded, from_cache: d.fromCache, calls: [...calls],
        would_deny: d.wouldDeny ? d.wouldDeny.reason : null, log,
      });
    } else {
      const body = JSON.parse(d.response.body);
      const www = d.response.headers.find(([n]) => n === 'www-authenticate');
      const nonce = d.response.headers.find(([n]) => n === 'dpop-nonce');
      observations.push({
        status: d.status,
        reason: d.reason,
        error: body.error ?? null,
        www_authenticate: www ? www[1] : null,
        dpop_nonce: nonce ? nonce[1] : null,
        forwarded: [],
        calls: [...calls],
        log,
      });
    }
  }
  return observations;
}

export async function runAll(vectors, wasm) {
  const out = {};
  for (const v of vectors) {
    try {
      out[v.name] = { ok: await runVector(v, wasm) };
    } catch (e) {
      out[v.name] = { error: String(e && e.stack ? e.stack : e) };
    }
  }
  return out;
}

export { Gate };

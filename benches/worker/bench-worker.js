// workerd bench entry: POST {mode, alg, policy, jwk, issuer, tokens}; runs one
// decision (or one jose verification) per token and answers when done. The
// driver times whole requests from outside (workerd freezes clocks inside).
import wasm from './erpgate_bg.wasm';
import * as jose from '../../tests/worker/node_modules/jose/dist/webapi/index.js';
import { createGate } from '../../src/adapters/js/index.js';

const gates = new Map();
const keys = new Map();

export default {
  async fetch(request) {
    const job = await request.json();
    let ok = 0;
    if (job.mode === 'jose') {
      let key = keys.get(job.alg);
      if (!key) {
        key = await jose.importJWK(job.jwk, job.alg);
        keys.set(job.alg, key);
      }
      for (const t of job.tokens) {
        const { payload } = await jose.jwtVerify(t, key, {
          issuer: job.issuer,
          audience: 'DomainAPI',
          typ: 'at+jwt',
          currentDate: new Date(job.nowMs),
          algorithms: [job.alg],
        });
        if (payload) ok++;
      }
    } else {
      let gate = gates.get(job.alg);
      if (!gate) {
        gate = await createGate(job.policy, { wasm, now: () => job.nowMs });
        gates.set(job.alg, gate);
      }
      for (const t of job.tokens) {
        const d = await gate.check('GET', '/api/domain/odata/Crm_Customers', [['authorization', `Bearer ${t}`]]);
        if (d.allow) ok++;
      }
    }
    return Response.json({ ok });
  },
};

// An ERP.net API behind erpgate on Cloudflare Workers (or any workerd):
// the core decides every request; allowed ones go to ORIGIN with the
// verified identity in x-erp-* headers.
import wasm from '../../src/adapters/js/pkg/erpgate_bg.wasm';
import erpnetPolicy from '../../policies/erpnet.json';
import { withGate } from '../../src/adapters/js/index.js';

export default withGate(
  async (request, env) => {
    const url = new URL(request.url);
    return fetch(new Request(new URL(url.pathname + url.search, env.ORIGIN), request));
  },
  (env) => {
    const policy = env.POLICY ? JSON.parse(env.POLICY) : erpnetPolicy;
    return {
      policy,
      wasm,
      upstreams: { identity: env.IDENTITY_URL },
      clientCredentials: {
        clientId: env.INTROSPECTION_CLIENT_ID,
        clientSecret: env.INTROSPECTION_CLIENT_SECRET,
      },
      // Only needed when the policy's `dpop.nonces` is on.
      dpopNonceKey: env.DPOP_NONCE_KEY,
    };
  },
);

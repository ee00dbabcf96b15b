// Node entry: runs one reference-token request through the real JS layer with
// the client credentials from argv, and prints what the layer sent upstream
// (purpose and Authorization of each call), the names of its counters, and
// how it takes a policy that asks for DPoP server nonces.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createGate } from '../../src/adapters/js/index.js';

const [clientId, clientSecret, token] = process.argv.slice(2);
const read = (path) => readFileSync(fileURLToPath(new URL(path, import.meta.url)));
const wasm = new WebAssembly.Module(read('../../src/adapters/js/pkg/erpgate_bg.wasm'));
const calls = [];
const gate = await createGate(read('../../policies/erpnet.json').toString('utf8'), {
  wasm,
  hostCrypto: false,
  upstreams: new Proxy({}, { get: (_, name) => `http://${String(name)}.invalid` }),
  clientCredentials: { clientId, clientSecret },
  // stdout carries this script's one JSON line only.
  logDecisions: false,
  fetch: async (_url, init, call) => {
    calls.push({ purpose: call.purpose, authorization: init.headers.get('authorization') });
    return new Response('{"active":false}', { status: 200 });
  },
});
const decision = await gate.check('GET', '/api/domain/odata/Crm_Customers', [['authorization', `Bearer ${token}`]]);
// A policy that asks for DPoP server nonces needs a key: without one, or
// with a short one, the gate is not made (the error names the option).
const withNonces = JSON.parse(read('../../policies/erpnet.json').toString('utf8'));
withNonces.dpop = { nonces: true };
const nonceKeyErrors = [];
for (const dpopNonceKey of [undefined, 'c2hvcnQ']) {
  try {
    await createGate(withNonces, { wasm, hostCrypto: false, dpopNonceKey });
    nonceKeyErrors.push(null);
  } catch (e) {
    nonceKeyErrors.push(String(e.message));
  }
}
const keyed = await createGate(withNonces, { wasm, hostCrypto: false, dpopNonceKey: 'A'.repeat(43) });
process.stdout.write(JSON.stringify({
  status: decision.status,
  calls,
  counters: Object.keys(gate.stats()),
  nonceKeyErrors,
  keyedGate: keyed !== undefined,
}));

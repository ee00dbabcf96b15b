// The worker module in Node, for `node --cpu-prof`: one gate, N checks of one
// token (`repeat`) or of N fresh ones (`first`), with a key made here.
//
// scripts/build-worker && node [--cpu-prof] benches/worker/profile-node.mjs RS256|ES256|EdDSA repeat|first N
import { readFileSync } from 'node:fs';
import * as jose from '../../tests/worker/node_modules/jose/dist/webapi/index.js';
import { createGate } from '../../src/adapters/js/index.js';
const wasm = new WebAssembly.Module(readFileSync(new URL('../../src/adapters/js/pkg/erpgate_bg.wasm', import.meta.url)));
const alg = process.argv[2] ?? 'RS256';
const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k1', alg, use: 'sig' };
const policy = JSON.parse(readFileSync(new URL('../../policies/erpnet.json', import.meta.url), 'utf8'));
const iss = 'https://demo.my.erp.net/id';
policy.issuers = [{ issuer: iss, audiences: ['DomainAPI'], algorithms: [alg], jwks: { keys: [jwk] }, leeway_s: 60 }];
const now = 1_800_000_000;
async function mint(i) {
  return new jose.SignJWT({ client_id: 'PK', client_system_user: 'admin', client_system_user_type: 'InternalUser', client_db: 'E1', jti: 'J' + i, scope: ['read', 'update'] })
    .setProtectedHeader({ alg, typ: 'at+jwt', kid: 'k1' }).setIssuer(iss).setAudience(['DomainAPI']).setIssuedAt(now - 10).setNotBefore(now - 10).setExpirationTime(now + 3590).sign(privateKey);
}
const gate = await createGate(policy, { wasm, now: () => now * 1000, logDecisions: false });
const mode = process.argv[3] ?? 'repeat';
const N = Number(process.argv[4] ?? 20000);
const tokens = [];
for (let i = 0; i < (mode === 'repeat' ? 1 : N); i++) tokens.push(await mint(i));
const t = tokens[0];
const h0 = [['authorization', `Bearer ${t}`]];
let d = await gate.check('GET', '/api/domain/odata/Crm_Customers', h0);
if (!d.allow) throw new Error(JSON.stringify(d));
const start = performance.now();
for (let i = 0; i < N; i++) {
  const tok = mode === 'repeat' ? t : tokens[i];
  d = await gate.check('GET', '/api/domain/odata/Crm_Customers', [['authorization', `Bearer ${tok}`]]);
}
const el = performance.now() - start;
console.log(mode, alg, (el * 1000 / N).toFixed(2), 'µs/op', d.allow, d.headers.set.length);

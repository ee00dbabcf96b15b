// Verifies an app lifecycle envelope as an app's install handler would,
// with Node's own crypto (independent of the host's Rust RSA code):
// node verify-lifecycle.mjs <envelope.json> <marketplace.json URL>
// Finds the public key through marketplace.json (endpoints.public_key),
// checks the schema and the RSA-SHA256 signature over the compact JSON of
// the payload, and prints {"valid": …, "payload": …}.
import { readFileSync } from 'node:fs';
import { createPublicKey, verify } from 'node:crypto';

const [file, marketplaceUrl] = process.argv.slice(2);
const envelope = JSON.parse(readFileSync(file, 'utf8'));
const marketplace = await (await fetch(marketplaceUrl)).json();
const pem = await (await fetch(marketplace.endpoints.public_key)).text();
const key = createPublicKey(pem);
const signed = Buffer.from(JSON.stringify(envelope.payload), 'utf8');
const signature = Buffer.from(envelope.signature, 'base64');
const valid = envelope.schema === 'erpnet.appLifecycleEvent.v2'
  && verify('sha256', signed, { key, padding: 1 /* RSA_PKCS1_PADDING */ }, signature);
const tampered = { ...envelope.payload, applicationUri: `${envelope.payload.applicationUri}x` };
const forgeryRefused = !verify('sha256', Buffer.from(JSON.stringify(tampered)), key, signature);
console.log(JSON.stringify({ valid, forgeryRefused, payload: envelope.payload }));

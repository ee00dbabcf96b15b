// Node entry: reads prepared vectors (JSON) from the file named in argv, prints observations.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runAll } from './harness.js';

const wasmPath = fileURLToPath(new URL('../../src/adapters/js/pkg/erpgate_bg.wasm', import.meta.url));
const wasm = new WebAssembly.Module(readFileSync(wasmPath));
const vectors = JSON.parse(readFileSync(process.argv[2], 'utf8'));
process.stdout.write(JSON.stringify(await runAll(vectors, wasm)));

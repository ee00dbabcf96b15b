// workerd entry: POST a JSON array of prepared vectors, get observations back.
import wasm from './erpgate_bg.wasm';
import { runAll } from './harness.js';

export default {
  async fetch(request) {
    if (request.method !== 'POST') return new Response('POST vectors', { status: 405 });
    const vectors = await request.json();
    return Response.json(await runAll(vectors, wasm));
  },
};

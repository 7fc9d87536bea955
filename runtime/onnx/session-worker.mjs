// One onnxruntime session on a worker thread (see session-thread.ts). Plain JavaScript so that it starts
// the same under tsx, vitest and node: onnxruntime-node runs a model synchronously on the calling thread,
// and this thread is the one that waits.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

let session;
try {
  session = await ort.InferenceSession.create(workerData.model, workerData.options);
} catch (err) {
  parentPort.postMessage({ type: 'failed', message: String(err) });
}

if (session !== undefined) {
  parentPort.on('message', async (m) => {
    if (m.type === 'release') {
      await session.release();
      parentPort.postMessage({ type: 'released' });
      return;
    }
    try {
      const feeds = {};
      for (const f of m.feeds) feeds[f.name] = new ort.Tensor(f.type, f.data, f.dims);
      const out = m.fetches === null ? await session.run(feeds) : await session.run(feeds, m.fetches);
      const outputs = [];
      const transfer = new Set();
      for (const [name, t] of Object.entries(out)) {
        outputs.push({ name, type: t.type, dims: t.dims, data: t.data });
        // An output that owns its whole buffer moves to the caller instead of being copied twice.
        const d = t.data;
        if (ArrayBuffer.isView(d) && d.byteOffset === 0 && d.byteLength === d.buffer.byteLength) {
          transfer.add(d.buffer);
        }
      }
      parentPort.postMessage({ type: 'result', id: m.id, outputs }, [...transfer]);
    } catch (err) {
      parentPort.postMessage({ type: 'error', id: m.id, message: String(err) });
    }
  });
  parentPort.postMessage({
    type: 'ready',
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputMetadata: session.inputMetadata,
  });
}

// Preloaded into a `dr` node by tests (NODE_OPTIONS=--import): an 'exit' listener that never returns, as pino's
// exit flush did in a node whose stderr reader was gone (it retried the failing write every 100 ms, forever).
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  process.on('exit', () => {
    const never = new Int32Array(new SharedArrayBuffer(4));
    for (;;) Atomics.wait(never, 0, 0, 100);
  });
}

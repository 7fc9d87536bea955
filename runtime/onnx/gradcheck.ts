/**
 * Finite-difference check of `grad`: builds a graph, appends its gradients, runs it on onnxruntime's CPU
 * provider, and compares each analytic gradient element with a central difference of the loss. Used by
 * the op tests here and usable for composite blocks (attention, norms) built elsewhere.
 */
import * as ort from 'onnxruntime-node';
import { DrError } from '../../config/errors.ts';
import { grad } from './autodiff.ts';
import { Graph, type Tensor } from './graph.ts';

export interface GradCheckResult {
  /** Largest |analytic - numeric| / max(1, |numeric|) over all checked elements. */
  readonly maxError: number;
  readonly analytic: Readonly<Record<string, Float64Array>>;
  readonly numeric: Readonly<Record<string, Float64Array>>;
}

export interface GradCheckOptions {
  /** Central-difference step (default 1e-6 for float64, 1e-2 for float32). */
  eps?: number;
}

/**
 * `build` declares the graph's inputs and returns a single-element loss, the float inputs to
 * differentiate, and feeds for every input.
 */
export async function gradCheck(
  build: (g: Graph) => { loss: Tensor; wrt: readonly Tensor[]; feeds: Record<string, ort.Tensor> },
  options: GradCheckOptions = {},
): Promise<GradCheckResult> {
  const g = new Graph('gradcheck');
  const { loss, wrt, feeds } = build(g);
  const grads = grad(loss, wrt);
  g.output(loss, 'loss');
  grads.forEach((t, i) => g.output(t, `grad_${i}`));
  const session = await ort.InferenceSession.create(g.serialize().model, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  try {
    const base = await session.run(feeds);
    const lossAt = async (f: Record<string, ort.Tensor>): Promise<number> =>
      Number((await session.run(f, ['loss'])).loss!.data[0]);
    const analytic: Record<string, Float64Array> = {};
    const numeric: Record<string, Float64Array> = {};
    let maxError = 0;
    for (const [i, w] of wrt.entries()) {
      const fed = feeds[w.name];
      if (!fed)
        throw new DrError('ONNX_GRADCHECK_FEED', `gradCheck: ${w.name} is differentiated but not fed`);
      const eps = options.eps ?? (fed.type === 'float64' ? 1e-6 : 1e-2);
      const values = Float64Array.from(fed.data as Float64Array | Float32Array);
      const a = Float64Array.from(base[`grad_${i}`]!.data as Float64Array | Float32Array);
      const n = new Float64Array(values.length);
      for (let j = 0; j < values.length; j++) {
        const at = (delta: number): ort.Tensor => {
          const v = values.slice();
          v[j] = v[j]! + delta;
          return new ort.Tensor(
            fed.type as 'float64' | 'float32',
            fed.type === 'float64' ? v : Float32Array.from(v),
            fed.dims,
          );
        };
        const plus = await lossAt({ ...feeds, [w.name]: at(eps) });
        const minus = await lossAt({ ...feeds, [w.name]: at(-eps) });
        n[j] = (plus - minus) / (2 * eps);
        maxError = Math.max(maxError, Math.abs(a[j]! - n[j]!) / Math.max(1, Math.abs(n[j]!)));
      }
      analytic[w.name] = a;
      numeric[w.name] = n;
    }
    return { maxError, analytic, numeric };
  } finally {
    await session.release();
  }
}

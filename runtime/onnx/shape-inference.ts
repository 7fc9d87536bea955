/**
 * Static shape rules shared by the op builders and the gradient rules: numpy broadcasting over static,
 * named and unknown dims, and the question "which axes did broadcasting expand?" that decides whether a
 * gradient can be reduced with constant axes or needs axes computed at run time.
 */
import { DrError } from '../../config/errors.ts';
import { formatShape, type Dim, type Shape } from './types.ts';

export function broadcastDim(a: Dim, b: Dim): Dim {
  if (a === b) return a;
  if (a === 1) return b;
  if (b === 1) return a;
  if (typeof a === 'number' && typeof b === 'number') return null;
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return null;
}

/** The numpy-broadcast shape of `shapes`; throws ONNX_SHAPE_MISMATCH on two different static sizes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): Dim[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i];
      if (d === undefined) continue;
      if (typeof dim === 'number' && typeof d === 'number' && dim !== 1 && d !== 1 && dim !== d) {
        throw new DrError(
          'ONNX_SHAPE_MISMATCH',
          `${op}: shapes ${shapes.map(formatShape).join(' and ')} do not broadcast (axis ${i}: ${dim} vs ${d})`,
        );
      }
      dim = broadcastDim(dim, d);
    }
    out.push(dim);
  }
  return out;
}

/**
 * Axes of `to` (right-aligned with `from`) that broadcasting expanded from size 1, when that is knowable
 * statically: `known` is false when some axis pairs an unknown/named dim with a different dim.
 */
export function expandedAxes(from: Shape, to: Shape): { axes: number[]; known: boolean } {
  const lead = to.length - from.length;
  const axes: number[] = [];
  let known = true;
  for (let i = 0; i < to.length; i++) {
    if (i < lead) {
      axes.push(i);
      continue;
    }
    const f = from[i - lead]!;
    const t = to[i]!;
    if (f === t && f !== null) continue;
    if (f === 1) {
      if (t !== 1) axes.push(i);
    } else if (typeof f === 'number' || t === 1) continue;
    else known = false;
  }
  return { axes, known };
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d !== null && d === b[i]);
}

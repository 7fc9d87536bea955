/**
 * Element types and shapes shared by the graph builder, the serializer and the executor. Shapes are
 * static where a dimension is a number, named-dynamic where it is a string (the same name means the same
 * size everywhere in a graph), and unknown where it is null (shape inference could not tell).
 */
import { DrError } from '../../config/errors.ts';

export type DType =
  'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export type Dim = number | string | null;
export type Shape = readonly Dim[];

/** TypedArray backing a tensor of each dtype as onnxruntime-node expects it (float16/bfloat16 as raw bits). */
export interface TypedArrayOf {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}
export type AnyTypedArray = TypedArrayOf[DType];

/** ONNX TensorProto.DataType codes. */
export const ONNX_ELEM_TYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

export const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(['float32', 'float64', 'float16', 'bfloat16']);

export function isFloat(dtype: DType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

/** Product of static dims, or null when any dim is not a number. */
export function staticSize(shape: Shape): number | null {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') return null;
    n *= d;
  }
  return n;
}

/** True when every dim is a number. */
export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

/** Normalizes a possibly negative axis against `rank`; throws ONNX_BAD_AXIS when out of range. */
export function normAxis(axis: number, rank: number, what = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new DrError(
      'ONNX_BAD_AXIS',
      `${what} ${axis} is out of range for a tensor of rank ${rank}; use -${rank}..${rank - 1}`,
    );
  }
  return a;
}

export function formatShape(shape: Shape): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

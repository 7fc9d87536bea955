/**
 * The graph under construction: typed tensor handles, graph inputs (data and trainable params),
 * initializers (constants baked into the model), nodes and named outputs. Ops are free functions in
 * `ops.ts` that append nodes here; `grad()` in `autodiff.ts` appends the backward nodes to the same graph
 * so that one session run does forward and backward.
 */
import { DrError } from '../../config/errors.ts';
import { toModelProto, serializeModel, type SerializeOptions, type SerializedModel } from './serialize.ts';
import type { onnx } from 'onnx-proto';
import { formatShape, type AnyTypedArray, type DType, type Shape } from './types.ts';

/** Default ONNX opset: 18 makes `axes` an input on every Reduce op and is supported by onnxruntime 1.29 CPU and CUDA. */
export const DEFAULT_OPSET = 18;

export type AttrValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'tensor'; readonly value: ConstantData };

/** A small dense value (a Constant / ConstantOfShape attribute or an initializer's payload). */
export interface ConstantData {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly data: AnyTypedArray;
}

export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  ints: (value: readonly number[]): AttrValue => ({ kind: 'ints', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  floats: (value: readonly number[]): AttrValue => ({ kind: 'floats', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  tensor: (value: ConstantData): AttrValue => ({ kind: 'tensor', value }),
};

/** How a value enters the graph: fed at run time (`input`, `param`), baked in (`initializer`), or computed (`node`). */
export type ValueKind = 'input' | 'param' | 'initializer' | 'node';

export interface Node {
  readonly opType: string;
  /** `null` marks an omitted optional input. */
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
}

export interface OutputSpec {
  readonly dtype: DType;
  readonly shape: Shape;
}

export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly kind: ValueKind,
    readonly producer: Node | null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}:${this.dtype}${formatShape(this.shape)}`;
  }
}

export interface Initializer {
  readonly tensor: Tensor;
  readonly value: ConstantData;
}

export interface GraphOutput {
  readonly name: string;
  readonly tensor: Tensor;
}

export class Graph {
  readonly opset: number;
  readonly #names = new Set<string>();
  readonly #inputs: Tensor[] = [];
  readonly #initializers: Initializer[] = [];
  readonly #nodes: Node[] = [];
  readonly #outputs: GraphOutput[] = [];
  readonly #scalarCache = new Map<string, Tensor>();
  readonly #constants = new Map<Tensor, ConstantData>();
  #counter = 0;

  constructor(
    readonly name = 'graph',
    options: { opset?: number } = {},
  ) {
    this.opset = options.opset ?? DEFAULT_OPSET;
    if (this.opset < 17)
      throw new DrError('ONNX_BAD_OPSET', `opset ${this.opset} is too old; use 17 or later`);
  }

  /** Graph inputs in declaration order (data inputs and params). */
  get inputs(): readonly Tensor[] {
    return this.#inputs;
  }
  /** The trainable weights: graph inputs declared with `param`. */
  get params(): readonly Tensor[] {
    return this.#inputs.filter((t) => t.kind === 'param');
  }
  get initializers(): readonly Initializer[] {
    return this.#initializers;
  }
  get nodes(): readonly Node[] {
    return this.#nodes;
  }
  get outputs(): readonly GraphOutput[] {
    return this.#outputs;
  }

  /** A data input fed at run time. String dims are named dynamic dims. */
  input(name: string, dtype: DType, shape: Shape): Tensor {
    return this.#declareInput(name, dtype, shape, 'input');
  }

  /** A trainable weight fed at run time as a graph input (so an optimizer step can return its update). */
  param(name: string, dtype: DType, shape: Shape): Tensor {
    if (!shape.every((d) => typeof d === 'number')) {
      throw new DrError('ONNX_BAD_SHAPE', `param ${name} needs a static shape, got ${formatShape(shape)}`);
    }
    return this.#declareInput(name, dtype, shape, 'param');
  }

  /** A constant baked into the model (serialized inline or as external data). */
  initializer(name: string, value: ConstantData): Tensor {
    const size = value.dims.reduce((a, b) => a * b, 1);
    if (value.data.length !== size) {
      throw new DrError(
        'ONNX_BAD_SHAPE',
        `initializer ${name} has ${value.data.length} elements but dims ${formatShape(value.dims)} need ${size}`,
      );
    }
    this.#claim(name);
    return this.#addInitializer(name, value);
  }

  /** A constant from plain numbers; scalars (rank 0) of the same dtype and value are shared. */
  constant(values: number | readonly number[], dtype: DType, dims?: readonly number[]): Tensor {
    const list = typeof values === 'number' ? [values] : values;
    const shape = dims ?? (typeof values === 'number' ? [] : [list.length]);
    const key = shape.length === 0 ? `${dtype}:${list[0]}` : null;
    const cached = key === null ? undefined : this.#scalarCache.get(key);
    if (cached) return cached;
    const t = this.#addInitializer(this.uniqueName('const'), {
      dtype,
      dims: shape,
      data: typedArrayFrom(dtype, list),
    });
    if (key !== null) this.#scalarCache.set(key, t);
    return t;
  }

  /** The value of an initializer, or undefined for any other tensor. */
  constantValue(t: Tensor): ConstantData | undefined {
    return this.#constants.get(t);
  }

  /**
   * Appends a node. Ops in `ops.ts` call this after inferring output types; use it directly for a standard
   * ONNX op that has no builder (then you state the output dtypes and shapes, and it has no gradient).
   */
  addNode(
    opType: string,
    inputs: readonly (Tensor | null)[],
    outputs: readonly OutputSpec[],
    attrs: Readonly<Record<string, AttrValue>> = {},
  ): Tensor[] {
    for (const t of inputs) {
      if (t !== null && t.graph !== this) {
        throw new DrError(
          'ONNX_FOREIGN_TENSOR',
          `${t.name} belongs to graph ${t.graph.name}, not ${this.name}`,
        );
      }
    }
    const made: Tensor[] = [];
    const node: Node = { opType, inputs: [...inputs], outputs: made, attrs };
    for (const spec of outputs) {
      made.push(new Tensor(this, this.uniqueName(opType), spec.dtype, spec.shape, 'node', node));
    }
    this.#nodes.push(node);
    return made;
  }

  /**
   * Marks `t` as a graph output called `name`. A computed value is renamed in place (an Identity would copy
   * it on every run); inputs, initializers and values already output under another name go through an Identity.
   */
  output(t: Tensor, name: string = t.name): Tensor {
    if (t.graph !== this) throw new DrError('ONNX_FOREIGN_TENSOR', `${t.name} belongs to another graph`);
    if (this.#outputs.some((o) => o.name === name)) {
      throw new DrError('ONNX_DUPLICATE_NAME', `graph ${this.name} already has an output called ${name}`);
    }
    let out = t;
    const alreadyOutput = this.#outputs.some((o) => o.tensor === t);
    if (name !== t.name && t.kind === 'node' && !alreadyOutput) {
      this.#claim(name);
      (t as { name: string }).name = name;
    } else if (name !== t.name || t.kind !== 'node' || alreadyOutput) {
      this.#claim(name);
      const node: Node = { opType: 'Identity', inputs: [t], outputs: [], attrs: {} };
      out = new Tensor(this, name, t.dtype, t.shape, 'node', node);
      (node.outputs as Tensor[]).push(out);
      this.#nodes.push(node);
    }
    this.#outputs.push({ name, tensor: out });
    return out;
  }

  uniqueName(base: string): string {
    let name: string;
    do name = `${base}_${this.#counter++}`;
    while (this.#names.has(name));
    this.#names.add(name);
    return name;
  }

  toModelProto(options: SerializeOptions = {}): onnx.ModelProto {
    return toModelProto(this, options);
  }

  /** ONNX bytes for `InferenceSession.create(bytes)` (initializers inline unless `externalData` is set). */
  serialize(options: SerializeOptions = {}): SerializedModel {
    return serializeModel(this, options);
  }

  #declareInput(name: string, dtype: DType, shape: Shape, kind: 'input' | 'param'): Tensor {
    for (const d of shape) {
      if (d === null || (typeof d === 'number' && (!Number.isInteger(d) || d < 0))) {
        throw new DrError(
          'ONNX_BAD_SHAPE',
          `input ${name} has an invalid dim in ${formatShape(shape)}; use a size or a name`,
        );
      }
    }
    this.#claim(name);
    const t = new Tensor(this, name, dtype, [...shape], kind, null);
    this.#inputs.push(t);
    return t;
  }

  #addInitializer(name: string, value: ConstantData): Tensor {
    const tensor = new Tensor(this, name, value.dtype, value.dims, 'initializer', null);
    this.#initializers.push({ tensor, value });
    this.#constants.set(tensor, value);
    return tensor;
  }

  #claim(name: string): void {
    if (this.#names.has(name))
      throw new DrError('ONNX_DUPLICATE_NAME', `graph ${this.name} already has a value called ${name}`);
    this.#names.add(name);
  }
}

/** A typed array of `dtype` holding `values` (bool as 0/1 bytes, int64 as BigInt). */
export function typedArrayFrom(dtype: DType, values: readonly number[]): AnyTypedArray {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
    case 'int32':
      return Int32Array.from(values);
    case 'int8':
      return Int8Array.from(values);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(values);
    case 'float16':
      return Uint16Array.from(values, float32ToFloat16Bits);
    case 'bfloat16':
      return Uint16Array.from(values, float32ToBfloat16Bits);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits of `v`, rounded to nearest even. */
export function float32ToFloat16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1) === 1)) r += 1;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1) === 1)) r += 1;
  return sign | r;
}

/** bfloat16 bits of `v` (the high half of its float32 bits), rounded to nearest even. */
export function float32ToBfloat16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

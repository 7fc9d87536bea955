/**
 * Graph -> ONNX ModelProto through onnx-proto (protobufjs code generated from the official onnx.proto).
 * Initializers go inline as raw little-endian bytes, or, above a size threshold, into one external data
 * blob that `saveModel` writes beside the model file (onnxruntime resolves it relative to the model path).
 */
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { DrError } from '../../config/errors.ts';
import onnxProto from 'onnx-proto';
import type { onnx as P } from 'onnx-proto';
import type { Graph, AttrValue, ConstantData, Node, Tensor } from './graph.ts';
import { ONNX_ELEM_TYPE, type Shape, type DType } from './types.ts';

const { onnx } = onnxProto;

/** IR version 8 is the one onnx-proto's schema describes and admits opsets up to 18+ in onnxruntime. */
const IR_VERSION = 8;
/** A serialized protobuf message must stay under 2 GiB; leave room for the graph itself. */
const PROTOBUF_LIMIT = 2 ** 31 - 64 * 2 ** 20;

export interface SerializeOptions {
  /** Put initializers of at least `minBytes` (default 1024) into an external blob named `file`. */
  externalData?: { file: string; minBytes?: number };
  producer?: string;
}

export interface SerializedModel {
  readonly model: Uint8Array;
  /** The external data blob, when `externalData` was requested and some initializer went there. */
  readonly externalData: Uint8Array | null;
}

export function toModelProto(graph: Graph, options: SerializeOptions = {}): P.ModelProto {
  return buildModel(graph, options).proto;
}

export function serializeModel(graph: Graph, options: SerializeOptions = {}): SerializedModel {
  const { proto, external } = buildModel(graph, options);
  return { model: onnx.ModelProto.encode(proto).finish(), externalData: external };
}

/** Writes `<path>` and, when needed, its external data file next to it; returns the model path to load. */
export function saveModel(graph: Graph, path: string, options: { minBytes?: number } = {}): string {
  const file = `${basename(path)}.data`;
  const { model, externalData } = serializeModel(graph, {
    externalData: { file, minBytes: options.minBytes },
  });
  writeFileSync(path, model);
  if (externalData) writeFileSync(`${path}.data`, externalData);
  return path;
}

function buildModel(
  graph: Graph,
  options: SerializeOptions,
): { proto: P.ModelProto; external: Uint8Array | null } {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const ext = options.externalData;
  let inline = 0;
  const { nodes, used } = liveNodes(graph);
  const declared = new Set(
    graph.inputs.flatMap((t) => t.shape.filter((d): d is string => typeof d === 'string')),
  );
  const initializer = graph.initializers
    .filter(({ tensor }) => used.has(tensor))
    .map(({ tensor, value }) => {
      const bytes = rawBytes(value);
      if (ext && bytes.byteLength >= (ext.minBytes ?? 1024)) {
        const pad = (64 - (offset % 64)) % 64;
        if (pad) chunks.push(new Uint8Array(pad));
        offset += pad;
        chunks.push(bytes);
        const entry = onnx.TensorProto.create({
          name: tensor.name,
          dataType: ONNX_ELEM_TYPE[value.dtype],
          dims: [...value.dims],
          dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
          externalData: [
            { key: 'location', value: ext.file },
            { key: 'offset', value: String(offset) },
            { key: 'length', value: String(bytes.byteLength) },
          ],
        });
        offset += bytes.byteLength;
        return entry;
      }
      inline += bytes.byteLength;
      return tensorProto(tensor.name, value);
    });
  if (inline > PROTOBUF_LIMIT) {
    throw new DrError(
      'ONNX_MODEL_TOO_LARGE',
      `graph ${graph.name} has ${inline} bytes of inline initializers, over protobuf's 2 GiB limit; save it with saveModel (external data) or feed the weights as inputs`,
    );
  }
  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: options.producer ?? 'deep-researcher-ts',
    opsetImport: [{ domain: '', version: graph.opset }],
    graph: {
      name: graph.name,
      input: graph.inputs.map((t) => valueInfo(t.name, t.dtype, t.shape, declared)),
      output: graph.outputs.map((o) => valueInfo(o.name, o.tensor.dtype, o.tensor.shape, declared)),
      initializer,
      node: nodes.map((n, i) =>
        onnx.NodeProto.create({
          name: `${n.opType}_n${i}`,
          opType: n.opType,
          input: n.inputs.map((t) => (t === null ? '' : t.name)),
          output: n.outputs.map((t) => t.name),
          attribute: Object.entries(n.attrs).map(([name, a]) => attribute(name, a)),
        }),
      ),
    },
  });
  return { proto, external: chunks.length ? concat(chunks, offset) : null };
}

/**
 * The nodes that some graph output depends on, in order, and the tensors they read. onnxruntime runs every
 * node it is given, reachable or not, so dead nodes (a gradient nobody outputs, an unused helper value)
 * are dropped here rather than computed on every run.
 */
function liveNodes(graph: Graph): { nodes: Node[]; used: Set<Tensor> } {
  const used = new Set<Tensor>(graph.outputs.map((o) => o.tensor));
  const live: Node[] = [];
  const all = graph.nodes;
  for (let i = all.length - 1; i >= 0; i--) {
    const n = all[i]!;
    if (!n.outputs.some((t) => used.has(t))) continue;
    live.push(n);
    for (const t of n.inputs) if (t) used.add(t);
  }
  return { nodes: live.reverse(), used };
}

/** Only dim names declared on graph inputs are written; derived names (`seq-1`) stay builder-internal. */
function valueInfo(
  name: string,
  dtype: DType,
  shape: Shape,
  declared: ReadonlySet<string>,
): P.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_ELEM_TYPE[dtype],
        shape: {
          dim: shape.map((d) =>
            typeof d === 'number'
              ? { dimValue: d }
              : typeof d === 'string' && declared.has(d)
                ? { dimParam: d }
                : {},
          ),
        },
      },
    },
  };
}

function tensorProto(name: string, value: ConstantData): P.TensorProto {
  return onnx.TensorProto.create({
    name,
    dataType: ONNX_ELEM_TYPE[value.dtype],
    dims: [...value.dims],
    rawData: rawBytes(value),
  });
}

function rawBytes(value: ConstantData): Uint8Array {
  const d = value.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function attribute(name: string, a: AttrValue): P.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: [...a.value] };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...a.value] };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor':
      return { name, type: T.TENSOR, t: tensorProto('', a.value) };
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

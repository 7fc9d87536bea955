/** Public surface of the ONNX graph runtime: build graphs, differentiate them, optimise, run them. */
export type { DType, Dim, Shape, AnyTypedArray } from './types.ts';
export { isFloat, staticSize } from './types.ts';
export { Graph, Tensor, attr, DEFAULT_OPSET } from './graph.ts';
export type { AttrValue, ConstantData, Node, OutputSpec, GraphOutput, Initializer, ValueKind } from './graph.ts';
export * as op from './ops.ts';
export type { TensorLike, SliceSpec, GemmOptions } from './ops.ts';
export { TO_END } from './ops.ts';
export { saveModel } from './serialize.ts';
export type { SerializeOptions, SerializedModel } from './serialize.ts';

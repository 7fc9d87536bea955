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
export { grad, unbroadcast, DIFFERENTIABLE_OPS } from './autodiff.ts';
export type { GradOptions } from './autodiff.ts';
export { gradCheck } from './gradcheck.ts';
export type { GradCheckResult, GradCheckOptions } from './gradcheck.ts';

/** Public surface of the ONNX graph runtime: build graphs, differentiate them, optimise, run them. */
export type { DType, Dim, Shape, AnyTypedArray } from './types.ts';
export { isFloat, staticSize } from './types.ts';
export { Graph, Tensor, attr, DEFAULT_OPSET } from './graph.ts';
export type {
  AttrValue,
  ConstantData,
  Node,
  OutputSpec,
  GraphOutput,
  Initializer,
  ValueKind,
} from './graph.ts';
export * as op from './ops.ts';
export type { TensorLike, SliceSpec, GemmOptions } from './ops.ts';
export { TO_END } from './ops.ts';
export { saveModel } from './serialize.ts';
export type { SerializeOptions, SerializedModel } from './serialize.ts';
export { grad, unbroadcast, DIFFERENTIABLE_OPS } from './autodiff.ts';
export type { GradOptions } from './autodiff.ts';
export { gradCheck } from './gradcheck.ts';
export type { GradCheckResult, GradCheckOptions } from './gradcheck.ts';
export { adamw, trainStep, stateNames, ADAMW_LR, ADAMW_STEP, GRAD_NORM, LOSS } from './adamw.ts';
export type { AdamWConfig, AdamWGraph, StateNames } from './adamw.ts';
export { OnnxSession, SessionCache, familyKey, cudaProviderInstalled } from './session.ts';
export type { Provider, SessionConfig, Feeds, Fetches } from './session.ts';
export { TrainState } from './train-state.ts';
export type { ParamValue, StepResult, FloatArray } from './train-state.ts';

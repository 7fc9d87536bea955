/**
 * A bigram softmax language model in plain TypeScript (logits of the next token = row `prev` of a [V, V]
 * table), with exact gradients of the GRPO and SFT losses. It is the learner's CPU reference model: small
 * enough that tests can check gradient accumulation, the data-parallel all-reduce and checkpoint/resume
 * exactness to the last bit, without waiting on an ONNX session.
 */
import { grpoLoss, emptySums, type GrpoLossConfig } from './grpo.ts';
import type { GradientResult, MicroBatch, ParamSpec, TrainableModel } from './model.ts';

export class BigramModel implements TrainableModel {
  readonly params: readonly ParamSpec[];

  constructor(readonly vocab: number) {
    this.params = [{ name: 'logits', shape: [vocab, vocab] }];
  }

  /** Deterministic small random init from `seed`. */
  init(seed: number): Float32Array[] {
    let s = seed >>> 0 || 1;
    const w = new Float32Array(this.vocab * this.vocab);
    for (let i = 0; i < w.length; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      w[i] = ((s >>> 0) / 2 ** 32 - 0.5) * 0.2;
    }
    return [w];
  }

  async logprobs(weights: readonly Float32Array[], mb: MicroBatch): Promise<Float32Array> {
    return this.forward(weights, mb).logprob;
  }

  async grpoGradients(
    weights: readonly Float32Array[],
    mb: MicroBatch,
    config: GrpoLossConfig,
    denominator: number,
  ): Promise<GradientResult> {
    const f = this.forward(weights, mb);
    const r = grpoLoss(
      {
        logprob: f.logprob,
        oldLogprob: mb.oldLogprob,
        refLogprob: mb.refLogprob,
        advantage: mb.advantage,
        mask: mb.lossMask,
        entropy: f.entropy,
      },
      config,
      denominator,
    );
    return { grads: [this.backward(weights, mb, r.dLogprob, r.dEntropy)], loss: r.loss, sums: r.sums };
  }

  async sftGradients(
    weights: readonly Float32Array[],
    mb: MicroBatch,
    denominator: number,
  ): Promise<GradientResult> {
    const f = this.forward(weights, mb);
    const dLogprob = new Float32Array(f.logprob.length);
    const sums = emptySums();
    let nll = 0;
    for (let i = 0; i < dLogprob.length; i++) {
      const m = mb.lossMask[i]!;
      if (m === 0) continue;
      nll -= m * f.logprob[i]!;
      sums.tokens += m;
      dLogprob[i] = -m / denominator;
    }
    sums.pgLoss = nll;
    const grads = [this.backward(weights, mb, dLogprob, new Float32Array(dLogprob.length))];
    return { grads, loss: nll / denominator, sums };
  }

  private forward(
    weights: readonly Float32Array[],
    mb: MicroBatch,
  ): { logprob: Float32Array; entropy: Float32Array } {
    const w = weights[0]!;
    const V = this.vocab;
    const logprob = new Float32Array(mb.rows * mb.cols);
    const entropy = new Float32Array(mb.rows * mb.cols);
    const logp = new Float64Array(V);
    for (let r = 0; r < mb.rows; r++) {
      for (let j = 1; j < mb.cols; j++) {
        const i = r * mb.cols + j;
        if (mb.attention[i] === 0) continue;
        const prev = mb.inputIds[i - 1]!;
        this.rowLogSoftmax(w, prev, logp);
        logprob[i] = logp[mb.inputIds[i]!]!;
        let h = 0;
        for (let k = 0; k < V; k++) h -= Math.exp(logp[k]!) * logp[k]!;
        entropy[i] = h;
      }
    }
    return { logprob, entropy };
  }

  /** Chains ∂loss/∂logprob and ∂loss/∂entropy through the softmax of each used row. */
  private backward(
    weights: readonly Float32Array[],
    mb: MicroBatch,
    dLogprob: Float32Array,
    dEntropy: Float32Array,
  ): Float32Array {
    const w = weights[0]!;
    const V = this.vocab;
    const grad = new Float64Array(V * V);
    const logp = new Float64Array(V);
    for (let r = 0; r < mb.rows; r++) {
      for (let j = 1; j < mb.cols; j++) {
        const i = r * mb.cols + j;
        const gl = dLogprob[i]!;
        const ge = dEntropy[i]!;
        if (gl === 0 && ge === 0) continue;
        const prev = mb.inputIds[i - 1]!;
        this.rowLogSoftmax(w, prev, logp);
        let h = 0;
        for (let k = 0; k < V; k++) h -= Math.exp(logp[k]!) * logp[k]!;
        const base = prev * V;
        for (let k = 0; k < V; k++) {
          const p = Math.exp(logp[k]!);
          // ∂logp_t/∂z_k = 1[k = t] − p_k;  ∂H/∂z_k = −p_k (log p_k + H)
          grad[base + k]! += gl * ((k === mb.inputIds[i] ? 1 : 0) - p) + ge * -p * (logp[k]! + h);
        }
      }
    }
    return Float32Array.from(grad);
  }

  private rowLogSoftmax(w: Float32Array, row: number, out: Float64Array): void {
    const V = this.vocab;
    const base = row * V;
    let max = -Infinity;
    for (let k = 0; k < V; k++) max = Math.max(max, w[base + k]!);
    let sum = 0;
    for (let k = 0; k < V; k++) sum += Math.exp(w[base + k]! - max);
    const lse = max + Math.log(sum);
    for (let k = 0; k < V; k++) out[k] = w[base + k]! - lse;
  }
}

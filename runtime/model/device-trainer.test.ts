/**
 * The device-resident GRPO step (C API, IO binding) against the LearnerActor's current path (old and
 * reference log-probs, gradients through the JS binding, AdamW on the host), on the CPU provider: same model,
 * micro-batch, loss and optimizer, weights within 1e-4 relative after two optimizer steps. On the GPU machine
 * `DR_TEST_ONNX_PROVIDER=cuda NVIDIA_TF32_OVERRIDE=0` runs the same comparison with both paths on CUDA.
 */
import { describe, expect, it } from 'vitest';
import { defaultAdamWConfig } from '../../actors/learner/adamw.ts';
import { buildMicroBatches, prepareSamples, type TrainSample } from '../../actors/learner/batching.ts';
import { defaultGrpoLossConfig } from '../../actors/learner/grpo.ts';
import { Learner } from '../../actors/learner/learner.ts';
import { DeviceGrpoTrainer } from './device-trainer.ts';
import { randomCheckpoint, tinyConfig } from './testing.ts';
import { Qwen2Trainer } from './trainer.ts';

const provider = process.env.DR_TEST_ONNX_PROVIDER === 'cuda' ? 'cuda' : 'cpu';
const config = tinyConfig({ tie_word_embeddings: true });
const rows = 4;
const cols = 16;

function samples(): TrainSample[] {
  let s = 11;
  const rnd = (): number => ((s = (s * 48271) % 2147483647), s / 2147483647);
  return Array.from({ length: rows }, (_, i) => {
    const tokenIds = Array.from({ length: cols }, () => Math.floor(rnd() * config.vocabSize));
    return {
      group: `q${i % 2}`,
      tokenIds,
      lossMask: tokenIds.map((_, j) => (j < 4 ? 0 : 1)),
      reward: rnd(),
      version: 0,
    };
  });
}

describe(`DeviceGrpoTrainer (${provider} provider)`, () => {
  it("takes the learner's GRPO steps: weights within 1e-4 relative of the host path after two steps", async () => {
    const ckpt = randomCheckpoint(config, 9, 0.1);
    const optimizer = { ...defaultAdamWConfig, lr: 1e-3 };
    const model = new Qwen2Trainer(config, { provider, thread: 'main' });
    const learner = new Learner(
      model,
      model.params.map((p) => Float32Array.from(ckpt.weights.get(p.name)!.data)),
      {
        loss: defaultGrpoLossConfig,
        optimizer,
        maxTokensPerMicroBatch: rows * cols,
        maxSeqLen: cols,
        padId: 0,
      },
    );
    const device = new DeviceGrpoTrainer(config, ckpt.weights, {
      provider,
      adamw: {
        beta1: optimizer.beta1,
        beta2: optimizer.beta2,
        eps: optimizer.eps,
        weightDecay: optimizer.weightDecay,
        maxGradNorm: optimizer.maxGradNorm!,
      },
    });
    const prepared = prepareSamples(samples());
    const [mb] = buildMicroBatches(prepared, { maxTokens: rows * cols, maxSeqLen: cols, padId: 0 });
    const denominator = mb!.lossMask.reduce((a, b) => a + b, 0);
    try {
      for (const tag of ['a', 'b']) {
        const host = await learner.trainStep(prepared, 'grpo', tag);
        const dev = device.grpoStep(mb!, defaultGrpoLossConfig, denominator, optimizer.lr);
        expect(Math.abs(dev.loss - host.loss)).toBeLessThan(1e-5 * Math.max(1, Math.abs(host.loss)));
        expect(dev.gradNorm).toBeCloseTo(host.gradNorm, 4);
      }
      const weights = device.weights();
      let worst = 0;
      model.params.forEach((p, i) => {
        const h = learner.currentWeights()[i]!;
        const d = weights.get(p.name)!;
        let num = 0;
        let den = 0;
        for (let k = 0; k < h.length; k++) {
          num += (d[k]! - h[k]!) ** 2;
          den += h[k]! ** 2;
        }
        worst = Math.max(worst, Math.sqrt(num / Math.max(den, 1e-30)));
      });
      console.log(
        `device vs host path on ${provider}: worst relative weight difference ${worst.toExponential(2)}`,
      );
      expect(worst).toBeLessThan(1e-4);
      // And the weights did move away from the start.
      expect(weights.get('model.norm.weight')).not.toEqual(ckpt.weights.get('model.norm.weight')!.data);
    } finally {
      device.dispose();
      await model.dispose();
    }
  });
});

/**
 * Builds what a learner runs from its ModelSpec: the trainable model with the initial weights every learner
 * of a group starts from (identical on all ranks), and the engine that holds them (engine.ts).
 */
import { loadCheckpoint } from '../../runtime/model/checkpoint.ts';
import { Qwen2Trainer } from '../../runtime/model/trainer.ts';
import type { AdamWConfig } from './adamw.ts';
import { BigramModel } from './bigram-model.ts';
import { DeviceEngine } from './device-engine.ts';
import { HostEngine, type LearnerEngine } from './engine.ts';
import type { TrainableModel } from './model.ts';
import type { ModelSpec } from './protocol.ts';

export async function loadTrainableModel(
  spec: ModelSpec,
  device: 'cpu' | 'cuda',
): Promise<{ model: TrainableModel; initial: Float32Array[] }> {
  switch (spec.kind) {
    case 'bigram': {
      const model = new BigramModel(spec.vocab);
      return { model, initial: model.init(spec.seed) };
    }
    case 'qwen2': {
      const checkpoint = await loadCheckpoint(spec.dir);
      // On a GPU node the CUDA provider is required: a learner placed there must not quietly train on CPU.
      const model = new Qwen2Trainer(checkpoint.config, { provider: device });
      return { model, initial: model.params.map((p) => checkpoint.weights.get(p.name)!.data) };
    }
  }
}

/**
 * A Qwen2 gets the device-resident engine on CUDA unless `residency: 'host'`, and on CPU when asked for with
 * `residency: 'device'` (the native binding's host-buffer fallback); everything else gets the host engine.
 */
export async function loadLearnerEngine(
  spec: ModelSpec,
  device: 'cpu' | 'cuda',
  options: { residency?: 'device' | 'host'; optimizer: AdamWConfig },
): Promise<LearnerEngine> {
  const residency = options.residency ?? (device === 'cuda' ? 'device' : 'host');
  if (spec.kind === 'qwen2' && residency === 'device') {
    const checkpoint = await loadCheckpoint(spec.dir);
    const initial = new Map([...checkpoint.weights].map(([n, w]) => [n, w.data]));
    return new DeviceEngine(checkpoint.config, initial, { provider: device, optimizer: options.optimizer });
  }
  const { model, initial } = await loadTrainableModel(spec, device);
  return new HostEngine(model, initial);
}

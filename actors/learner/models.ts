/**
 * Builds the trainable model a learner runs from its ModelSpec, with the initial weights every learner of a
 * group starts from (identical on all ranks).
 */
import { loadCheckpoint } from '../../runtime/model/checkpoint.ts';
import { Qwen2Trainer } from '../../runtime/model/trainer.ts';
import { BigramModel } from './bigram-model.ts';
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

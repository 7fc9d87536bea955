/**
 * Builds the trainable model a learner runs from its ModelSpec, with the initial weights every learner of a
 * group starts from (identical on all ranks).
 */
import { DrError } from '../../config/errors.ts';
import { BigramModel } from './bigram-model.ts';
import type { TrainableModel } from './model.ts';
import type { ModelSpec } from './protocol.ts';

export async function loadTrainableModel(
  spec: ModelSpec,
  _device: 'cpu' | 'cuda',
): Promise<{ model: TrainableModel; initial: Float32Array[] }> {
  switch (spec.kind) {
    case 'bigram': {
      const model = new BigramModel(spec.vocab);
      return { model, initial: model.init(spec.seed) };
    }
    case 'qwen2':
      throw new DrError(
        'LEARNER_MODEL_UNAVAILABLE',
        `cannot train ${spec.dir}: runtime/model does not export a Qwen2 train step yet; use model kind 'bigram' meanwhile`,
      );
  }
}

/**
 * The RolloutActor of a training job (kind `trainer-rollout`): the rollout actor of actors/rollout, except
 * that its completions policy tokenizes prompts and tool responses with the served model's own tokenizer
 * (`tokenizerDir`), e.g. the embedded policy's reduced 8,192-token vocabulary, so every token id of a
 * trajectory is one the learner's model knows. Without `tokenizerDir` it is the plain rollout actor.
 */
import type { ActorFactory } from '../../runtime/actor.ts';
import { loadTokenizer } from '../../runtime/model/tokenizer.ts';
import { CompletionPolicy } from '../rollout/completion-policy.ts';
import { buildPolicy } from '../rollout/policy-factory.ts';
import { createRolloutActor, type RolloutActorArgs } from '../rollout/rollout-actor.ts';

export interface TrainerRolloutArgs extends RolloutActorArgs {
  tokenizerDir?: string;
}

export const trainerRolloutActor: ActorFactory<TrainerRolloutArgs> = (args, ctx) => {
  const { tokenizerDir, ...rolloutArgs } = args;
  const factory = createRolloutActor(
    tokenizerDir === undefined
      ? {}
      : {
          policy: async (config) =>
            config.kind === 'completions'
              ? {
                  policy: new CompletionPolicy({ baseURL: config.baseURL, model: config.model }),
                  encoder: await loadTokenizer(tokenizerDir),
                }
              : buildPolicy(config, (target, msg, options) => ctx.ask(target, msg, options)),
        },
  );
  return factory(rolloutArgs, ctx);
};

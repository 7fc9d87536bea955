/**
 * The RolloutActor of a training job (kind `trainer-rollout`): the rollout actor of actors/rollout, except
 * that its completions policy renders and tokenizes prompts and tool responses with the trained model's own
 * tokenizer and chat template (`tokenizerDir`), e.g. the embedded policy's reduced 8,192-token vocabulary, so
 * every token id of a trajectory is one the learner's model knows. Without `tokenizerDir` it is the plain
 * rollout actor.
 */
import type { ActorFactory } from '../../runtime/actor.ts';
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
          policy: (config) =>
            buildPolicy(
              config.kind === 'completions' || config.kind === 'sglang'
                ? { ...config, tokenizerDir }
                : config,
              (target, msg, options) => ctx.ask(target, msg, options),
            ),
        },
  );
  return factory(rolloutArgs, ctx);
};

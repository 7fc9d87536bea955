/**
 * The actor kinds every node can run: kind name -> factory. Node processes (`dr head`, `dr worker`,
 * `dr start`) load this module unless `--kinds <module>` names another one exporting `kinds` the same way.
 * Each actor kind adds exactly one entry, `['<kind>', factory]`, importing the factory from its own folder.
 */
import type { ActorFactory, ActorKinds } from '../runtime/actor.ts';
import { learnerActor, learnerInboxActor } from './learner/learner-actor.ts';
import { parameterServer } from './params/param-server.ts';
import { jobManager } from './jobs/job-manager.ts';
import { browseActor } from './browse/browse-actor.ts';
import { rolloutActor } from './rollout/rollout-actor.ts';
import { trainerActor } from './trainer/trainer-actor.ts';
import { trainerRolloutActor } from './trainer/trainer-rollout-actor.ts';
import { sandboxActor } from './sandbox/sandbox-actor.ts';
import { searchActor } from './search/search-actor.ts';
import { searchCacheActor } from './search/shared-cache.ts';
import { policyActor } from './policy/policy-actor.ts';
import { nodeLogsActor } from '../runtime/monitor/node-logs-actor.ts';

export const kinds: ActorKinds = new Map<string, ActorFactory<never>>([
  ['rollout', rolloutActor],
  ['jobs', jobManager],
  ['learner', learnerActor as ActorFactory<never>],
  ['learner-inbox', learnerInboxActor as ActorFactory<never>],
  ['params', parameterServer as ActorFactory<never>],
  ['trainer', trainerActor as ActorFactory<never>],
  ['trainer-rollout', trainerRolloutActor as ActorFactory<never>],
  ['sandbox', sandboxActor as ActorFactory<never>],
  ['search', searchActor as ActorFactory<never>],
  ['search-cache', searchCacheActor as ActorFactory<never>],
  ['browse', browseActor as ActorFactory<never>],
  ['policy', policyActor as ActorFactory<never>],
  ['node-logs', nodeLogsActor as ActorFactory<never>],
]);

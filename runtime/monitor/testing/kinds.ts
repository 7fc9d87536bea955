/** The cluster's test kinds plus the monitor's node-logs reader, for tests of `dr node-logs`. */
import type { ActorFactory, ActorKinds } from '../../actor.ts';
import { kinds as testKinds } from '../../testing/test-kinds.ts';
import { NODE_LOGS_KIND, nodeLogsActor } from '../node-logs-actor.ts';

export const kinds: ActorKinds = new Map<string, ActorFactory<never>>([
  ...testKinds,
  [NODE_LOGS_KIND, nodeLogsActor as ActorFactory<never>],
]);

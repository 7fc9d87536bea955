/**
 * The actor kinds `npm run bench:tools` runs on its worker processes (and its head): only the tool actors,
 * so a worker starts without loading the model runtime.
 */
import type { ActorFactory, ActorKinds } from '../runtime/actor.ts';
import { browseActor } from '../actors/browse/browse-actor.ts';
import { searchActor } from '../actors/search/search-actor.ts';

export const kinds: ActorKinds = new Map<string, ActorFactory<never>>([
  ['search', searchActor as ActorFactory<never>],
  ['browse', browseActor as ActorFactory<never>],
]);

/**
 * A trajectory's browse memory lives in exactly one BrowseActor; every browse of that trajectory goes there.
 */
import { shardFor } from '../search/shard.ts';

export function browseActorName(shard: number): string {
  return `browse/${shard}`;
}

export function browseShardFor(trajectoryId: string, nShards: number): number {
  return shardFor(trajectoryId, nShards);
}

/** The BrowseActor name that owns `trajectoryId`'s memory. */
export function browseActorFor(trajectoryId: string, nShards: number): string {
  return browseActorName(browseShardFor(trajectoryId, nShards));
}

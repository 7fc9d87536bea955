/**
 * Placement of keyed state (cache entries, trajectory memories) on one of `nShards` actors. Pure and the
 * same on every node and every run, so any caller anywhere picks the same actor for the same key.
 */

/** FNV-1a over the UTF-16 code units: cheap, stable, and spreads short similar strings well. */
function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export function shardFor(key: string, nShards: number): number {
  if (!Number.isInteger(nShards) || nShards < 1)
    throw new RangeError(`nShards must be a positive integer, got ${nShards}`);
  return fnv1a32(key) % nShards;
}

/** In-memory all-reduce ports for `size` learners of one process (tests). */
import { ChunkInbox, type CollectivePort } from '../allreduce.ts';

export function memoryPorts(size: number, timeoutMs = 10_000): CollectivePort[] {
  const inboxes = Array.from({ length: size }, () => new ChunkInbox());
  return inboxes.map((inbox, rank) => ({
    rank,
    size,
    send: async (to, key, data) => inboxes[to]!.deliver(rank, key, Float32Array.from(data)),
    receive: (from, key) => inbox.take(from, key, timeoutMs),
  }));
}

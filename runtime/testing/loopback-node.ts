/**
 * A node runtime inside this process on loopback, built as `dr head` / `dr worker` build theirs (rank 0 is
 * the head), for benchmarks and tests that want one side of the cluster in-process.
 */
import { loadClusterConfig, type ClusterConfigInput } from '../../config/cluster.ts';
import { silentLogger, type Logger } from '../../config/log.ts';
import { detectResources } from '../../cluster/resources.ts';
import type { ActorKinds } from '../actor.ts';
import { NodeRuntime } from '../node-runtime.ts';
import { TEST_TOKEN } from './node-process.ts';

export interface LoopbackNodeOptions {
  rank: number;
  /** The head's port; 0 for the head itself picks a free one. */
  masterPort: number;
  kinds: ActorKinds;
  /** More node settings (heartbeat timings, ...), as `loadClusterConfig` flags. */
  flags?: ClusterConfigInput;
  logger?: Logger;
}

export async function startLoopbackNode(options: LoopbackNodeOptions): Promise<NodeRuntime> {
  const config = loadClusterConfig({
    flags: {
      rank: options.rank,
      masterAddr: '127.0.0.1',
      masterPort: options.masterPort,
      listenHost: '127.0.0.1',
      ...options.flags,
    },
    env: { DR_CLUSTER_TOKEN: TEST_TOKEN },
  });
  const node = new NodeRuntime({
    config,
    role: options.rank === 0 ? 'head' : 'worker',
    kinds: options.kinds,
    resources: await detectResources({ gpuIds: [] }),
    logger: options.logger ?? silentLogger,
  });
  await node.start();
  return node;
}

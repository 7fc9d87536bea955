/**
 * A head process with the monitor wired in exactly as README.md "Wiring into dr head" says, for the
 * end-to-end test until `dr head` does the same (then the test starts `dr head --dashboard-port 0`).
 * Usage: tsx monitored-head.ts <kinds module>; settings from the same env/flags as `dr head`
 * (DR_CLUSTER_TOKEN, PET_MASTER_PORT, DR_HEARTBEAT_MS, ...). Logs JSON lines; `node ready` carries `port` and
 * `dashboard`.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { loadClusterConfig } from '../../../config/cluster.ts';
import { createLogger } from '../../../config/log.ts';
import { detectResources } from '../../../cluster/resources.ts';
import type { ActorKinds } from '../../actor.ts';
import { NodeRuntime } from '../../node-runtime.ts';
import { createHeadMonitor } from '../head-monitor.ts';
import { startNodeReporting } from '../node-reporting.ts';

const kindsModule = process.argv[2];
if (kindsModule === undefined) throw new Error('usage: monitored-head.ts <kinds module>');
const { kinds } = (await import(pathToFileURL(resolve(kindsModule)).href)) as { kinds: ActorKinds };
const config = loadClusterConfig({ flags: { rank: 0, masterAddr: '127.0.0.1', listenHost: '127.0.0.1' } });
const logger = createLogger({ role: 'head' });
const monitor = createHeadMonitor({ tokens: [config.token], host: '127.0.0.1', port: 0, log: logger });
const runtime = new NodeRuntime({
  config,
  role: 'head',
  kinds: new Map([...kinds, monitor.kind]),
  resources: await detectResources({ labels: config.labels, gpuIds: config.gpus }),
  logger,
});
await runtime.start();
const dashboard = await monitor.attach(runtime);
startNodeReporting(runtime);
logger.info({ rank: 0, port: runtime.node.port, dashboard }, 'node ready');
const stop = () => void runtime.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
// The test's pipe on stdin: when the test process is gone, so is this head (no orphans).
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();

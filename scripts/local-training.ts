/**
 * A training run on a local cluster, shared by `npm start` (scripts/main.ts) and the 3-seed F1 script:
 * real `dr head` / `dr worker` processes on loopback, the sandbox web with search/browse tools over it, and
 * a train job submitted to the head's job manager, whose TrainerActor is polled until the job ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrainConfig } from '../config/train.ts';
import type { SandboxInfoReply } from '../actors/sandbox/protocol.ts';
import type { TrainerStatus } from '../actors/trainer/protocol.ts';
import { JobsClient } from '../actors/jobs/jobs-client.ts';
import { JOB_MANAGER_NAME, TERMINAL_STATES } from '../actors/jobs/protocol.ts';
import { trainerName } from '../actors/jobs/train-job.ts';
import { DrError, isDrError } from '../config/errors.ts';
import { connectClient, type ClusterClient } from '../runtime/client.ts';
import { stopChildren, stopChildrenOnExit } from '../runtime/stop-children.ts';

const DR = fileURLToPath(new URL('./dr.js', import.meta.url));

export interface LocalCluster {
  client: ClusterClient;
  port: number;
  /** This run's random cluster token (what `dr status` needs in DR_CLUSTER_TOKEN). */
  token: string;
  /** The head's "node ready" log line (it names the dashboard when the head serves one). */
  ready: Record<string, unknown>;
  sandbox: SandboxInfoReply;
  stop(): Promise<void>;
}

/** Starts a head and `workers` worker processes from a cluster file whose services are the sandbox web
 * (`seed`, `size`) and one search and one browse shard over it (on rank 1 when there is a worker), as
 * `dr head --config` runs them for any user, and waits until those services run. */
export async function startLocalCluster(options: {
  workers: number;
  seed: number;
  size: number;
}): Promise<LocalCluster> {
  const token = randomBytes(24).toString('hex');
  const children: ChildProcess[] = [];
  // Nodes never outlive this process: SIGTERM, and SIGKILL for any still running after a grace period.
  const kill = (): void => stopChildrenOnExit(children);
  process.once('exit', kill);
  const jobsDir = await mkdtemp(join(tmpdir(), 'dr-local-jobs-'));
  const toolPlacement = options.workers >= 1 ? { rank: 1 } : 'head';
  const clusterFile = join(jobsDir, 'cluster.json');
  await writeFile(
    clusterFile,
    JSON.stringify({
      cluster: { nnodes: options.workers + 1 },
      search: {
        backend: 'sandbox',
        sandbox: { seed: options.seed, size: options.size },
        cacheDir: ':memory:',
        placement: toolPlacement,
      },
      browse: { reader: 'extractive', placement: toolPlacement },
    }),
  );
  const env = {
    ...process.env,
    DR_CLUSTER_TOKEN: token,
    DR_LOG_FORMAT: 'json',
    // The nodes' "node ready" line is how this script learns they are up; a quieter DR_LOG_LEVEL in the
    // caller's environment (the nodes' stderr is only parsed here, never shown) must not hide it.
    DR_LOG_LEVEL: 'info',
    // The head's job manager journals here, not in the shared .data/jobs of the working directory: a run
    // must neither resume another run's unfinished jobs nor leave its own for a later run to resume.
    DR_JOBS_DIR: jobsDir,
  };
  const ready = await startNode(
    ['head', '--port', '0', '--listen-host', '127.0.0.1', '--config', clusterFile],
    env,
    children,
  );
  const port = Number(ready.port);
  for (let rank = 1; rank <= options.workers; rank++) {
    await startNode(
      ['worker', '--head', `127.0.0.1:${port}`, '--rank', String(rank), '--listen-host', '127.0.0.1'],
      env,
      children,
    );
  }
  const client = await connectClient({ head: `127.0.0.1:${port}`, token });
  const stop = async (): Promise<void> => {
    await client.shutdownCluster().catch(() => undefined);
    await client.close();
    await stopChildren(children);
    await rm(jobsDir, { recursive: true, force: true });
  };
  try {
    await waitForActors(client, ['sandbox', 'search/0', 'browse/0', JOB_MANAGER_NAME]);
    const sandbox = await client.ask<SandboxInfoReply>('sandbox', { v: 1, type: 'sandbox.info' });
    return { client, port, token, ready, sandbox, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Services start in the background once the nodes have joined; a minute covers a loaded 2-core host. */
async function waitForActors(client: ClusterClient, names: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const running = new Set(
      (await client.status()).actors.filter((a) => a.state === 'running').map((a) => a.name),
    );
    const missing = names.filter((n) => !running.has(n));
    if (missing.length === 0) return;
    if (Date.now() > deadline)
      throw new DrError(
        'LOCAL_CLUSTER_NOT_READY',
        `${missing.join(', ')} did not start within ${timeoutMs} ms`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Submits a train job to the head's job manager (as `dr submit train` does), so `dr jobs`, `dr logs` and
 * the dashboard follow it like any other job; returns its id. */
export async function submitTrainJob(cluster: LocalCluster, config: TrainConfig): Promise<string> {
  const job = await new JobsClient(cluster.client).submit('train', { train: config });
  return job.id;
}

/** Follows a submitted train job, calling `onStatus` with its trainer's status about once a second, and
 * returns the trainer's last status once the job ends. */
export async function followTrainJob(
  cluster: LocalCluster,
  jobId: string,
  onStatus: (s: TrainerStatus) => void = () => undefined,
): Promise<TrainerStatus> {
  const jobs = new JobsClient(cluster.client);
  for (;;) {
    const job = await jobs.get(jobId);
    const status = await cluster.client
      .ask<TrainerStatus>(trainerName(jobId), { v: 1, type: 'trainer.status' })
      .catch((err: unknown) => {
        if (isDrError(err, 'ACTOR_NOT_FOUND')) return null; // queued, or between trainer restarts
        throw err;
      });
    if (status !== null) onStatus(status);
    if (TERMINAL_STATES.has(job.state)) {
      if (status !== null) return status;
      throw new DrError(
        job.error?.code ?? 'TRAIN_FAILED',
        job.error?.message ?? `train job ${jobId} ended ${job.state} before its trainer started`,
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function startNode(
  args: string[],
  env: NodeJS.ProcessEnv,
  children: ChildProcess[],
): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [DR, ...args], { env, stdio: ['pipe', 'ignore', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines)
        if (line.includes('"node ready"')) resolve(JSON.parse(line) as Record<string, unknown>);
    });
    child.once('exit', (code) => reject(new Error(`dr ${args[0]} exited with code ${code}`)));
  });
}

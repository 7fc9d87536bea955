/**
 * A connection to the cluster from a process outside it (the CLI, tests, job submission). It joins nothing:
 * it links to the head, which proxies its asks and tells to wherever the actors run.
 */
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { parseHostPort } from '../config/cluster.ts';
import { DrError } from '../config/errors.ts';
import { silentLogger, type Logger } from '../config/log.ts';
import { Link } from '../cluster/link.ts';
import { control, HELLO_TIMEOUT_MS } from '../cluster/node.ts';
import { Kind } from '../cluster/wire.ts';
import type { ActorRef, AskOptions, SpawnSpec } from './actor.ts';
import type { ClusterStatus } from './node-runtime.ts';
import { DEFAULT_ASK_TIMEOUT_MS } from './local-system.ts';
import { PendingAsks } from './remote-ask.ts';

export interface ClientOptions {
  /** "host:port" of the head. */
  head: string;
  token: string;
  /** Use wss; `ca` verifies a self-signed head certificate. */
  tls?: { ca?: string };
  /** How long to wait for the head to accept the connection (default 5 s). */
  connectTimeoutMs?: number;
  defaultAskTimeoutMs?: number;
  maxFrameBytes?: number;
  logger?: Logger;
}

export interface ClusterClient {
  ask<R = unknown>(name: string, msg: unknown, options?: AskOptions): Promise<R>;
  /** Throws CLUSTER_QUEUE_FULL when the link to the head is saturated; `whenWritable()` waits for it. */
  tell(name: string, msg: unknown): void;
  whenWritable(): Promise<void>;
  spawn<A>(spec: SpawnSpec<A>): Promise<ActorRef>;
  stopActor(name: string): Promise<void>;
  status(): Promise<ClusterStatus>;
  /** Ask every node to stop (what `dr stop` does). */
  shutdownCluster(): Promise<void>;
  close(): Promise<void>;
}

const CONTROL_TIMEOUT_MS = 30_000;

export async function connectClient(opts: ClientOptions): Promise<ClusterClient> {
  const { host, port } = parseHostPort(opts.head);
  const maxFrameBytes = opts.maxFrameBytes ?? 64 * 1024 * 1024;
  const url = `${opts.tls === undefined ? 'ws' : 'wss'}://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  const ws = new WebSocket(url, {
    headers: { authorization: `Bearer ${opts.token}` },
    maxPayload: 2 * maxFrameBytes,
    perMessageDeflate: false,
    ...(opts.tls?.ca !== undefined ? { ca: readFileSync(opts.tls.ca) } : {}),
  });
  const link = new Link(
    ws,
    { maxFrameBytes, queueHighWaterBytes: 16 * 1024 * 1024, queueMaxBytes: 256 * 1024 * 1024 },
    opts.logger ?? silentLogger,
  );
  link.peer = 0;
  const asks = new PendingAsks(-1);
  link.send(control(-1, 'hello', { role: 'client' }));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        fail(
          new DrError(
            'CLUSTER_HEAD_UNREACHABLE',
            `no answer from the head at ${opts.head} within ${connectTimeoutMs(opts)} ms. Fix: check --head / PET_MASTER_ADDR:PET_MASTER_PORT and that dr head runs`,
          ),
        ),
      connectTimeoutMs(opts),
    );
    function fail(err: DrError): void {
      clearTimeout(timer);
      link.terminate();
      reject(err);
    }
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      fail(
        res.statusCode === 401
          ? new DrError(
              'CLUSTER_AUTH_REFUSED',
              'the head refused our cluster token. Fix: use the same DR_CLUSTER_TOKEN / .dr-token as the head',
            )
          : new DrError(
              'CLUSTER_JOIN_FAILED',
              `the head answered HTTP ${res.statusCode}; is ${opts.head} a dr head?`,
            ),
      );
    });
    ws.once('error', (err) =>
      fail(
        new DrError(
          'CLUSTER_HEAD_UNREACHABLE',
          `cannot reach the head at ${opts.head}: ${err.message}. Fix: start it (dr head) or correct --head`,
        ),
      ),
    );
    link.on('envelope', (env) => {
      if (env.kind === Kind.CONTROL && env.target === 'welcome') {
        clearTimeout(timer);
        resolve();
      } else if (env.kind === Kind.CONTROL && env.target === 'refused') {
        const p = env.payload as { code?: string; message?: string } | null;
        fail(
          new DrError(
            String(p?.code ?? 'CLUSTER_JOIN_REFUSED'),
            String(p?.message ?? 'the head refused this client'),
          ),
        );
      } else if (env.kind === Kind.REPLY || env.kind === Kind.FAIL) {
        asks.onReply(env);
      }
    });
  });
  link.on('close', () =>
    asks.failLink(link, new DrError('ACTOR_NODE_DOWN', `the connection to the head at ${opts.head} closed`)),
  );
  const askTimeout = opts.defaultAskTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
  const controlAsk = (verb: string, payload: unknown) => asks.ask(link, 0, verb, payload, CONTROL_TIMEOUT_MS);
  return {
    ask: <R>(name: string, msg: unknown, options?: AskOptions) =>
      asks.ask(link, 0, name, msg, options?.timeoutMs ?? askTimeout) as Promise<R>,
    tell: (name, msg) => {
      link.send({ kind: Kind.TELL, from: -1, target: name, cid: 0, payload: msg });
    },
    whenWritable: () => link.whenWritable(),
    spawn: async (spec) => (await controlAsk('$spawn', { spec })) as ActorRef,
    stopActor: async (name) => {
      await controlAsk('$stop-actor', { name });
    },
    status: async () => (await controlAsk('$status', null)) as ClusterStatus,
    shutdownCluster: async () => {
      await controlAsk('$shutdown', null);
    },
    close: async () => {
      if (!link.isOpen) return;
      const closed = new Promise((r) => link.once('close', () => r(undefined)));
      link.close(1000, 'client done');
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1_000).unref())]);
      if (link.isOpen) link.terminate();
    },
  };
}

function connectTimeoutMs(opts: ClientOptions): number {
  return opts.connectTimeoutMs ?? HELLO_TIMEOUT_MS;
}

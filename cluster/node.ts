/**
 * A cluster node: the head (rank 0) or a worker. Every node listens (the head on masterPort, a worker on its
 * own port for peer links). Workers dial the head, say hello with rank, incarnation, listening port,
 * resources and an opaque join state, then heartbeat. The head keeps the membership table, runs the failure
 * detector (suspect on silence or a dropped link, down after `downAfterMs` of silence) and broadcasts the
 * table on every change; that table is how workers learn each other's addresses and dial each other
 * directly, so worker-to-worker traffic never passes through the head. Knows nothing about actors: it
 * moves envelopes and reports membership.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import type { ClusterConfig } from '../config/cluster.ts';
import { DrError } from '../config/errors.ts';
import type { Logger } from '../config/log.ts';
import { Link } from './link.ts';
import type { Resources } from './resources.ts';
import { Kind, type Envelope } from './wire.ts';

export type MemberState = 'alive' | 'suspect' | 'down' | 'left';

export interface Member {
  rank: number;
  incarnation: string;
  /** Where peers dial it (undefined for the head: workers reach it through their join link). */
  host: string | undefined;
  port: number;
  state: MemberState;
  resources: Resources;
  /** Epoch ms of the last state change and of the last sign of life. */
  since: number;
  lastSeen: number;
}

export type MemberEventType = 'joined' | 'alive' | 'suspect' | 'down' | 'left';
export interface MemberEvent {
  type: MemberEventType;
  member: Member;
}

export interface ClusterNodeEvents {
  /** TELL / ASK / REPLY / FAIL from a link that has said hello. Replies go back on the same link. */
  envelope: [Envelope, Link];
  member: [MemberEvent];
  linkClosed: [Link];
  /** Worker: (re)joined the head. `headChanged` when the head is a new incarnation (it restarted). */
  joined: [{ headIncarnation: string; headChanged: boolean; extra: unknown }];
  /** Worker: cannot go on (refused, bad token, head never reachable). The process should exit. */
  fatal: [DrError];
  /** Worker: the head asked every node to shut down. */
  shutdown: [];
}

export interface ClusterNodeOptions {
  config: ClusterConfig;
  role: 'head' | 'worker';
  resources: Resources;
  logger: Logger;
  /** Worker: opaque state presented at every (re)join (the runtime sends its hosted actors). */
  joinState?(): unknown;
  /** Head: decides the `extra` of a worker's welcome from its join state. */
  onJoin?(member: Member, state: unknown): unknown;
}

/** The hello every link opens with. */
interface Hello {
  role: 'worker' | 'peer' | 'client';
  rank?: number;
  incarnation?: string;
  host?: string;
  port?: number;
  resources?: Resources;
  state?: unknown;
}

export const HELLO_TIMEOUT_MS = 5_000;
const RECONNECT_INITIAL_MS = 100;
const RECONNECT_MAX_MS = 5_000;

export class ClusterNode extends EventEmitter<ClusterNodeEvents> {
  readonly rank: number;
  readonly incarnation = randomUUID();
  readonly members = new Map<number, Member>();
  private readonly cfg: ClusterConfig;
  private readonly log: Logger;
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private readonly inbound = new Set<Link>();
  /** Head: the join link of each worker. Worker: links it dialled to peers. */
  private readonly links = new Map<number, Link>();
  private headLink: Link | undefined;
  private headIncarnation: string | undefined;
  private lastAck = 0;
  private reconnectAttempt = 0;
  private firstDialAt = 0;
  private everJoined = false;
  /** The current head link has been welcomed (a link still dialling or saying hello carries nothing else). */
  private headReady = false;
  private timers = new Set<NodeJS.Timeout>();
  private heartbeat: NodeJS.Timeout | undefined;
  private detector: NodeJS.Timeout | undefined;
  private clientSeq = 0;
  private stopping = false;
  private joinWaiter: { resolve(): void; reject(e: unknown): void } | undefined;

  constructor(private readonly opts: ClusterNodeOptions) {
    super();
    this.cfg = opts.config;
    this.rank = opts.role === 'head' ? 0 : opts.config.rank;
    this.log = opts.logger;
    if (opts.role === 'worker' && this.rank === 0) {
      throw new DrError(
        'CONFIG_INVALID',
        'a worker cannot have rank 0 (that is the head). Fix: set PET_NODE_RANK / --rank to 1 or more',
      );
    }
  }

  get isHead(): boolean {
    return this.opts.role === 'head';
  }

  /** Port this node listens on. */
  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Head: listen. Worker: listen for peers, then join the head (resolves once joined). */
  async start(): Promise<void> {
    await this.listen(this.isHead ? this.cfg.masterPort : this.cfg.port);
    if (this.isHead) {
      const now = Date.now();
      this.members.set(0, {
        rank: 0,
        incarnation: this.incarnation,
        host: undefined,
        port: this.port,
        state: 'alive',
        resources: this.opts.resources,
        since: now,
        lastSeen: now,
      });
      this.detector = setInterval(() => this.detectFailures(), this.cfg.heartbeatIntervalMs);
      this.log.info({ port: this.port, nnodes: this.cfg.nnodes }, 'head listening');
      return;
    }
    this.firstDialAt = Date.now();
    const joined = new Promise<void>((resolve, reject) => (this.joinWaiter = { resolve, reject }));
    this.dialHead();
    await joined;
  }

  /** The link that reaches `rank` (dialled on demand). Throws CLUSTER_NODE_DOWN when it cannot be reached. */
  linkTo(rank: number): Link {
    if (this.isHead) {
      const link = this.links.get(rank);
      if (link?.isOpen === true) return link;
      throw nodeDown(rank, this.members.get(rank)?.state);
    }
    if (rank === 0) {
      if (this.headLink?.isOpen === true && this.headReady) return this.headLink;
      throw nodeDown(0, 'unreachable');
    }
    const existing = this.links.get(rank);
    if (existing?.isOpen === true) return existing;
    const m = this.members.get(rank);
    if (m === undefined || m.host === undefined || m.state === 'down' || m.state === 'left')
      throw nodeDown(rank, m?.state);
    return this.dialPeer(m);
  }

  send(rank: number, env: Envelope): boolean {
    return this.linkTo(rank).send(env);
  }

  /** Head: tell every worker to shut down (dr stop). */
  broadcastShutdown(): void {
    for (const link of this.links.values()) trySend(link, control(0, 'shutdown', null));
  }

  /** Leave the cluster and release every socket and timer. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.heartbeat);
    clearInterval(this.detector);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.joinWaiter?.reject(new DrError('CLUSTER_STOPPED', 'the node stopped before it joined'));
    this.joinWaiter = undefined;
    if (this.headLink?.isOpen === true) {
      trySend(this.headLink, control(this.rank, 'leave', { incarnation: this.incarnation }));
      await new Promise((r) => setTimeout(r, 20));
    }
    const all = [this.headLink, ...this.links.values(), ...this.inbound].filter(
      (l): l is Link => l !== undefined,
    );
    for (const l of all) l.close(1001, 'node stopping');
    await Promise.all(
      all
        .map((l) => (l.isOpen ? new Promise((r) => l.once('close', () => r(undefined))) : undefined))
        .map((p) => withTimeout(p, 500)),
    );
    for (const l of all) if (l.isOpen) l.terminate();
    await new Promise<void>((r) => (this.wss === undefined ? r() : this.wss.close(() => r())));
    await new Promise<void>((r) => (this.server === undefined ? r() : this.server.close(() => r())));
  }

  /** The membership table as published to workers and status. */
  table(): Member[] {
    return [...this.members.values()].sort((a, b) => a.rank - b.rank);
  }

  // ---- listening side -------------------------------------------------------------------------------

  private async listen(port: number): Promise<void> {
    const { tls } = this.cfg;
    const server =
      tls === undefined
        ? createHttpServer()
        : createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
    server.on('request', (_req, res) =>
      res.writeHead(426, { 'content-type': 'text/plain' }).end('dr cluster: WebSocket only\n'),
    );
    const wss = new WebSocketServer({ noServer: true, maxPayload: 2 * this.cfg.maxFrameBytes });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on('error', () => undefined);
      if (!this.tokenOk(req)) {
        this.log.warn(
          { remote: req.socket.remoteAddress },
          'refused a connection with a wrong or missing cluster token',
        );
        socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'EADDRINUSE'
            ? new DrError(
                'CLUSTER_PORT_IN_USE',
                `port ${port} on ${this.cfg.listenHost} is already in use. Fix: stop the process holding it or pick another port (${this.isHead ? 'PET_MASTER_PORT / --port' : 'DR_NODE_PORT / --node-port'})`,
              )
            : new DrError(
                'CLUSTER_LISTEN_FAILED',
                `cannot listen on ${this.cfg.listenHost}:${port}: ${err.message}`,
                { cause: err },
              ),
        );
      });
      server.listen(port, this.cfg.listenHost, () => resolve());
    });
    server.on('error', (err) => this.log.error({ err }, 'server error'));
    this.server = server;
    this.wss = wss;
  }

  private tokenOk(req: IncomingMessage): boolean {
    const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (given === undefined) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.cfg.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const link = new Link(ws, this.cfg, this.log);
    this.inbound.add(link);
    let hello: Hello | undefined;
    const helloTimer = setTimeout(() => {
      if (hello === undefined) {
        this.log.warn(
          { remote: req.socket.remoteAddress },
          'no hello within the time limit; closing the link',
        );
        link.close(4000, 'no hello');
      }
    }, HELLO_TIMEOUT_MS);
    link.on('envelope', (env) => {
      if (hello === undefined) {
        if (env.kind === Kind.CONTROL && env.target === 'hello' && isHello(env.payload)) {
          hello = env.payload;
          clearTimeout(helloTimer);
          this.onHello(link, hello, req);
        } else {
          this.log.warn(
            { remote: req.socket.remoteAddress, target: env.target },
            'dropped an envelope sent before hello',
          );
        }
        return;
      }
      if (env.kind === Kind.CONTROL) this.onControl(link, env);
      else this.emit('envelope', env, link);
    });
    link.on('close', () => {
      clearTimeout(helloTimer);
      this.inbound.delete(link);
      this.onLinkClosed(link);
    });
  }

  private onHello(link: Link, hello: Hello, req: IncomingMessage): void {
    if (hello.role === 'peer') {
      link.peer = hello.rank;
      return;
    }
    if (!this.isHead) {
      this.refuse(
        link,
        'CLUSTER_NOT_HEAD',
        `node ${this.rank} is a worker; ${hello.role}s join the head (rank 0)`,
      );
      return;
    }
    if (hello.role === 'client') {
      link.peer = -++this.clientSeq;
      trySend(
        link,
        control(0, 'welcome', { headIncarnation: this.incarnation, members: this.table(), id: link.peer }),
      );
      return;
    }
    this.onWorkerHello(link, hello, req.socket.remoteAddress);
  }

  private onWorkerHello(link: Link, hello: Hello, remote: string | undefined): void {
    const { rank, incarnation, resources } = hello;
    if (
      rank === undefined ||
      !Number.isInteger(rank) ||
      rank < 1 ||
      incarnation === undefined ||
      resources === undefined
    ) {
      this.refuse(
        link,
        'CLUSTER_BAD_HELLO',
        'a worker must say hello with a rank >= 1 (rank 0 is the head), an incarnation and its resources',
      );
      return;
    }
    const old = this.members.get(rank);
    const now = Date.now();
    if (
      old !== undefined &&
      old.incarnation !== incarnation &&
      old.state === 'alive' &&
      this.links.get(rank)?.isOpen === true
    ) {
      this.log.warn({ node: rank, remote }, 'refused a second live node claiming a taken rank');
      this.refuse(
        link,
        'CLUSTER_RANK_TAKEN',
        `rank ${rank} is held by a live node (${old.resources.hostname}, pid ${old.resources.pid}). Fix: give this node another PET_NODE_RANK / --rank, or stop the other one`,
      );
      return;
    }
    if (
      old !== undefined &&
      old.incarnation !== incarnation &&
      (old.state === 'alive' || old.state === 'suspect')
    ) {
      this.setState(old, 'down', now);
    }
    const previousLink = this.links.get(rank);
    if (previousLink !== undefined && previousLink !== link)
      previousLink.close(4001, 'replaced by a newer link');
    link.peer = rank;
    this.links.set(rank, link);
    const member: Member = {
      rank,
      incarnation,
      host: hello.host ?? remote?.replace(/^::ffff:/, ''),
      port: hello.port ?? 0,
      state: 'alive',
      resources,
      since: now,
      lastSeen: now,
    };
    const rejoin = old !== undefined && old.incarnation === incarnation;
    this.members.set(rank, member);
    const extra = this.opts.onJoin?.(member, hello.state);
    trySend(link, control(0, 'welcome', { headIncarnation: this.incarnation, members: this.table(), extra }));
    this.log.info(
      { node: rank, host: member.host, port: member.port, rejoin },
      rejoin ? 'worker reconnected' : 'worker joined',
    );
    this.emit('member', { type: rejoin ? 'alive' : 'joined', member });
    this.publish();
  }

  private refuse(link: Link, code: string, message: string): void {
    trySend(link, control(this.rank, 'refused', { code, message }));
    const t = setTimeout(() => {
      this.timers.delete(t);
      link.close(4003, code);
    }, 50);
    this.timers.add(t);
  }

  private onControl(link: Link, env: Envelope): void {
    const member = link.peer === undefined ? undefined : this.members.get(link.peer);
    switch (env.target) {
      case 'hb':
        if (this.isHead && member !== undefined && this.links.get(member.rank) === link) {
          member.lastSeen = Date.now();
          if (member.state === 'suspect') this.setState(member, 'alive', member.lastSeen);
          trySend(link, control(0, 'hb-ack', null));
        }
        return;
      case 'leave':
        if (this.isHead && member !== undefined && this.links.get(member.rank) === link) {
          this.links.delete(member.rank);
          this.setState(member, 'left', Date.now());
          link.close(1000, 'left');
        }
        return;
      default:
        this.log.warn({ target: env.target, peer: link.peer }, 'dropped an unknown control message');
    }
  }

  private onLinkClosed(link: Link): void {
    this.emit('linkClosed', link);
    if (!this.isHead || link.peer === undefined || this.links.get(link.peer) !== link) return;
    this.links.delete(link.peer);
    const member = this.members.get(link.peer);
    if (member?.state === 'alive') this.setState(member, 'suspect', Date.now());
  }

  private detectFailures(): void {
    const now = Date.now();
    for (const m of this.members.values()) {
      if (m.rank === 0 || (m.state !== 'alive' && m.state !== 'suspect')) continue;
      const silence = now - m.lastSeen;
      if (silence > this.cfg.downAfterMs) {
        this.links.get(m.rank)?.terminate();
        this.links.delete(m.rank);
        this.setState(m, 'down', now);
      } else if (silence > this.cfg.suspectAfterMs && m.state === 'alive') {
        this.setState(m, 'suspect', now);
      }
    }
  }

  private setState(m: Member, state: MemberState, now: number): void {
    if (m.state === state) return;
    m.state = state;
    m.since = now;
    const level = state === 'alive' ? 'info' : 'warn';
    this.log[level]({ node: m.rank, state, silentMs: now - m.lastSeen }, `node ${state}`);
    this.emit('member', { type: state, member: m });
    this.publish();
  }

  /** Head: send the membership table to every worker. */
  private publish(): void {
    const env = control(0, 'members', this.table());
    for (const link of this.links.values()) trySend(link, env);
  }

  // ---- worker side ----------------------------------------------------------------------------------

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.cfg.token}` };
  }

  private wsOptions(): WebSocket.ClientOptions {
    const { tls } = this.cfg;
    return {
      headers: this.headers(),
      maxPayload: 2 * this.cfg.maxFrameBytes,
      perMessageDeflate: false,
      // ws waits forever for an opening handshake by default: a dial to a host that accepted the TCP
      // connection but never answers (a node frozen or dying) would hold the link, and the asks queued on
      // it, past the failure detector. Give up after the time that declares a node down.
      handshakeTimeout: this.cfg.downAfterMs,
      ...(tls?.ca !== undefined ? { ca: readFileSync(tls.ca) } : {}),
    };
  }

  private url(host: string, port: number): string {
    const h = host.includes(':') ? `[${host}]` : host;
    return `${this.cfg.tls === undefined ? 'ws' : 'wss'}://${h}:${port}/`;
  }

  private dialHead(): void {
    if (this.stopping) return;
    const ws = new WebSocket(this.url(this.cfg.masterAddr, this.cfg.masterPort), this.wsOptions());
    const link = new Link(ws, this.cfg, this.log);
    link.peer = 0;
    this.headLink = link;
    ws.on('unexpected-response', (_req, res) => {
      const err =
        res.statusCode === 401
          ? new DrError(
              'CLUSTER_AUTH_REFUSED',
              'the head refused our cluster token. Fix: use the same DR_CLUSTER_TOKEN / .dr-token as the head',
            )
          : new DrError(
              'CLUSTER_JOIN_FAILED',
              `the head answered HTTP ${res.statusCode}; is ${this.cfg.masterAddr}:${this.cfg.masterPort} a dr head?`,
            );
      res.resume();
      this.fatal(err);
      ws.terminate();
    });
    ws.on('open', () => {
      const local = (ws as unknown as { _socket?: Socket })._socket?.localAddress?.replace(/^::ffff:/, '');
      link.send(
        control(this.rank, 'hello', {
          role: 'worker',
          rank: this.rank,
          incarnation: this.incarnation,
          host: this.cfg.advertiseHost ?? (local === '0.0.0.0' ? undefined : local),
          port: this.port,
          resources: this.opts.resources,
          state: this.opts.joinState?.(),
        } satisfies Hello),
      );
    });
    link.on('envelope', (env) => {
      if (env.kind === Kind.CONTROL) this.onHeadControl(link, env);
      else this.emit('envelope', env, link);
    });
    link.on('close', () => {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
      if (this.headLink === link) this.headReady = false;
      this.emit('linkClosed', link);
      if (this.headLink === link) this.scheduleReconnect();
    });
  }

  private onHeadControl(link: Link, env: Envelope): void {
    const p = env.payload as Record<string, unknown> | null;
    switch (env.target) {
      case 'welcome': {
        const headIncarnation = String(p?.headIncarnation);
        const headChanged = this.headIncarnation !== undefined && this.headIncarnation !== headIncarnation;
        this.headIncarnation = headIncarnation;
        this.reconnectAttempt = 0;
        this.everJoined = true;
        this.headReady = true;
        this.lastAck = Date.now();
        this.applyTable(p?.members);
        clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => this.beat(link), this.cfg.heartbeatIntervalMs);
        this.log.info({ headIncarnation, headChanged }, 'joined the head');
        this.joinWaiter?.resolve();
        this.joinWaiter = undefined;
        this.emit('joined', { headIncarnation, headChanged, extra: p?.extra });
        return;
      }
      case 'refused':
        this.fatal(
          new DrError(
            String(p?.code ?? 'CLUSTER_JOIN_REFUSED'),
            String(p?.message ?? 'the head refused this node'),
          ),
        );
        link.terminate();
        return;
      case 'hb-ack':
        this.lastAck = Date.now();
        return;
      case 'members':
        this.applyTable(p);
        return;
      case 'shutdown':
        this.emit('shutdown');
        return;
      default:
        this.log.warn({ target: env.target }, 'dropped an unknown control message from the head');
    }
  }

  private beat(link: Link): void {
    // While this node holds the link paused (mailbox backpressure) acks wait unread; that is not silence.
    if (link.isPaused) this.lastAck = Date.now();
    if (Date.now() - this.lastAck > this.cfg.downAfterMs) {
      this.log.warn(
        { silentMs: Date.now() - this.lastAck },
        'the head stopped answering heartbeats; reconnecting',
      );
      link.terminate();
      return;
    }
    trySend(link, control(this.rank, 'hb', null));
  }

  private applyTable(table: unknown): void {
    if (!Array.isArray(table)) return;
    const seen = new Set<number>();
    for (const m of table as Member[]) {
      seen.add(m.rank);
      const old = this.members.get(m.rank);
      this.members.set(m.rank, m);
      if (old === undefined || old.incarnation !== m.incarnation) {
        if (old !== undefined && old.state !== 'down') this.emit('member', { type: 'down', member: old });
        this.emit('member', { type: m.state === 'alive' ? 'joined' : m.state, member: m });
      } else if (old.state !== m.state) {
        this.emit('member', { type: m.state, member: m });
      }
      if (
        (m.state === 'down' || m.state === 'left' || old?.incarnation !== m.incarnation) &&
        m.rank !== this.rank
      ) {
        const stale = this.links.get(m.rank);
        if (stale !== undefined && old?.incarnation !== m.incarnation) stale.terminate();
      }
    }
    for (const rank of [...this.members.keys()]) if (!seen.has(rank)) this.members.delete(rank);
  }

  private scheduleReconnect(): void {
    if (this.stopping) return;
    if (!this.everJoined && Date.now() - this.firstDialAt > this.cfg.joinTimeoutMs) {
      this.fatal(
        new DrError(
          'CLUSTER_HEAD_UNREACHABLE',
          `cannot reach the head at ${this.cfg.masterAddr}:${this.cfg.masterPort} after ${this.cfg.joinTimeoutMs} ms. Fix: start it first (dr head) or correct PET_MASTER_ADDR / PET_MASTER_PORT / --head`,
        ),
      );
      return;
    }
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_INITIAL_MS * 2 ** this.reconnectAttempt++);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.dialHead();
    }, delay);
    this.timers.add(t);
  }

  private dialPeer(m: Member): Link {
    const ws = new WebSocket(this.url(m.host as string, m.port), this.wsOptions());
    const link = new Link(ws, this.cfg, this.log);
    link.peer = m.rank;
    this.links.set(m.rank, link);
    link.send(control(this.rank, 'hello', { role: 'peer', rank: this.rank } satisfies Hello));
    ws.on('unexpected-response', (_req, res) => {
      this.log.warn({ node: m.rank, status: res.statusCode }, 'a peer refused our link');
      res.resume();
      ws.terminate();
    });
    link.on('envelope', (env) => {
      if (env.kind !== Kind.CONTROL) this.emit('envelope', env, link);
    });
    link.on('close', () => {
      if (this.links.get(m.rank) === link) this.links.delete(m.rank);
      this.emit('linkClosed', link);
    });
    return link;
  }

  private fatal(err: DrError): void {
    if (this.stopping) return;
    this.log.error({ code: err.code }, err.message);
    const waiter = this.joinWaiter;
    this.joinWaiter = undefined;
    void this.stop();
    if (waiter !== undefined) waiter.reject(err);
    else this.emit('fatal', err);
  }
}

export function control(from: number, target: string, payload: unknown): Envelope {
  return { kind: Kind.CONTROL, from, target, cid: 0, payload };
}

export function nodeDown(rank: number, state: string | undefined): DrError {
  return new DrError(
    'ACTOR_NODE_DOWN',
    `node ${rank} is ${state ?? 'unknown to this node'}; its actors are unreachable until it rejoins or they are re-spawned`,
    {
      details: { node: rank },
    },
  );
}

function trySend(link: Link, env: Envelope): void {
  try {
    link.send(env);
  } catch {
    // A closed or saturated link: the failure detector and reconnect logic deal with it.
  }
}

function isHello(p: unknown): p is Hello {
  const role = (p as Hello | null)?.role;
  return role === 'worker' || role === 'peer' || role === 'client';
}

function withTimeout<T>(p: Promise<T> | undefined, ms: number): Promise<T | undefined> | undefined {
  if (p === undefined) return undefined;
  return Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}

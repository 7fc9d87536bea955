import { createReadStream, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { WebSocketServer, type WebSocket } from 'ws';
import { silentLogger, type Logger } from '../../config/log.ts';
import { DrError } from '../../config/errors.ts';
import { TokenGate, tokenCookie } from './auth.ts';
import { resultFile } from './job-results.ts';
import { metricsFileOf, readRunHistory, runFile } from './run-history.ts';
import type { DashboardMessage, MonitorHub } from './monitor-hub.ts';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from './prometheus.ts';

export interface DashboardServerOptions {
  hub: MonitorHub;
  /** Accepted tokens: the cluster token and/or a read-only dashboard token. */
  tokens: readonly string[];
  host?: string;
  /** The host name the printed URL uses when `host` is a wildcard address (default: this machine's name). */
  publicHost?: string;
  /** 0 picks a free port. */
  port?: number;
  log?: Logger;
  /** Mark the login cookie Secure (when served behind TLS). */
  secureCookie?: boolean;
  /** A socket whose unsent data grows past this many bytes is a slow reader and is closed. */
  maxSocketBufferBytes?: number;
}

export interface DashboardServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

interface Asset {
  type: string;
  body: Buffer;
}

const requireFromHere = createRequire(import.meta.url);

function loadAssets(): Map<string, Asset> {
  const own = (file: string) => readFileSync(new URL(`./assets/${file}`, import.meta.url));
  const dependency = (file: string) => readFileSync(requireFromHere.resolve(file));
  return new Map<string, Asset>([
    ['/', { type: 'text/html; charset=utf-8', body: own('index.html') }],
    ['/assets/dashboard.js', { type: 'text/javascript; charset=utf-8', body: own('dashboard.js') }],
    ['/assets/dashboard.css', { type: 'text/css; charset=utf-8', body: own('dashboard.css') }],
    [
      '/assets/uplot.js',
      { type: 'text/javascript; charset=utf-8', body: dependency('uplot/dist/uPlot.esm.js') },
    ],
    ['/assets/uplot.css', { type: 'text/css; charset=utf-8', body: dependency('uplot/dist/uPlot.min.css') }],
  ]);
}

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

/**
 * The head's monitoring endpoint: the dashboard page and its assets, `/api/state` and `/api/snapshot` (JSON),
 * `/metrics` (Prometheus text) and `/ws` (live updates). Every route needs a token; `POST /login` trades a
 * token typed into the page for an HttpOnly cookie.
 */
export async function startDashboardServer(options: DashboardServerOptions): Promise<DashboardServer> {
  const { hub } = options;
  const gate = new TokenGate(options.tokens);
  const log = options.log ?? silentLogger;
  const maxBuffer = options.maxSocketBufferBytes ?? 8 * 1024 * 1024;
  const assets = loadAssets();
  const sockets = new Set<WebSocket>();

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err, url: req.url }, 'dashboard request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://dashboard').pathname;
    if (req.method === 'POST' && path === '/login') return login(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    if (!gate.allows(req)) return unauthorized(req, res, path);
    const asset = assets.get(path);
    if (asset !== undefined) return send(res, 200, asset.type, asset.body);
    if (path === '/api/state') return send(res, 200, 'application/json', JSON.stringify(hub.state()));
    if (path === '/api/snapshot') return send(res, 200, 'application/json', JSON.stringify(hub.snapshot()));
    if (path === '/metrics')
      return send(res, 200, PROMETHEUS_CONTENT_TYPE, await renderPrometheus(hub.source, hub.store));
    const result = /^\/results\/([^/]+)\/(\d+)$/.exec(path);
    if (result !== null) return sendResult(res, decodeURIComponent(result[1] as string), Number(result[2]));
    const run = /^\/api\/jobs\/([^/]+)\/(history|files\/(.+))$/.exec(path);
    if (run !== null) return sendRun(res, decodeURIComponent(run[1] as string), run[3]);
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }

  function sendResult(res: ServerResponse, jobId: string, index: number): Promise<void> {
    const file = resultFile(hub.source, jobId, index);
    if (file === undefined) {
      send(res, 404, 'text/plain; charset=utf-8', 'no such result\n');
      return Promise.resolve();
    }
    return streamFile(res, file, jobId);
  }

  /** A job's run history (`/api/jobs/<id>/history`) or one file of its run folder (`.../files/<path>`). */
  async function sendRun(res: ServerResponse, jobId: string, wanted: string | undefined): Promise<void> {
    const metrics = metricsFileOf(hub.source, jobId);
    if (metrics === undefined)
      return send(res, 404, 'text/plain; charset=utf-8', 'this job has no metrics file\n');
    if (wanted === undefined) {
      const history = await readRunHistory(metrics, hub.panels.history ?? []).catch(() => undefined);
      if (history === undefined)
        return send(
          res,
          404,
          'text/plain; charset=utf-8',
          'the metrics file is not readable on the head (yet)\n',
        );
      return send(res, 200, 'application/json', JSON.stringify(history));
    }
    const file = await runFile(metrics, decodeURIComponent(wanted));
    if (file === undefined) return send(res, 404, 'text/plain; charset=utf-8', 'no such file in the run\n');
    return streamFile(res, file, jobId);
  }

  function streamFile(
    res: ServerResponse,
    file: { path: string; type: string },
    jobId: string,
  ): Promise<void> {
    return new Promise((resolve) => {
      const stream = createReadStream(file.path);
      stream.once('open', () => {
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': file.type });
        stream.pipe(res);
      });
      stream.once('error', (err) => {
        log.warn({ err, job: jobId, path: file.path }, 'job result not readable');
        if (!res.headersSent)
          send(res, 404, 'text/plain; charset=utf-8', 'result file not readable on the head\n');
        else res.destroy();
        resolve();
      });
      stream.once('close', () => resolve());
    });
  }

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, 4096);
    const token = body === undefined ? undefined : (new URLSearchParams(body).get('token') ?? undefined);
    if (!gate.accepts(token)) return unauthorized(req, res, '/');
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      location: '/',
      'set-cookie': tokenCookie(token as string, options.secureCookie === true),
    });
    res.end();
  }

  function unauthorized(req: IncomingMessage, res: ServerResponse, path: string): void {
    const wantsPage = path === '/' && (req.headers.accept ?? '').includes('text/html');
    res.setHeader('www-authenticate', 'Bearer realm="dr-dashboard"');
    if (wantsPage) return send(res, 401, 'text/html; charset=utf-8', LOGIN_PAGE);
    send(
      res,
      401,
      'text/plain; charset=utf-8',
      'unauthorized: send the cluster or dashboard token as "Authorization: Bearer <token>"\n',
    );
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  server.on('upgrade', (req, socket, head) => {
    const path = new URL(req.url ?? '/', 'http://dashboard').pathname;
    const refuse = (status: number, reason: string) => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (path !== '/ws') return refuse(404, 'Not Found');
    if (!gate.allows(req)) return refuse(401, 'Unauthorized');
    // The cookie rides along on cross-site WebSocket handshakes in some browsers: only serve our own pages.
    const origin = req.headers.origin;
    if (origin !== undefined && originHost(origin) !== req.headers.host) return refuse(403, 'Forbidden');
    wss.handleUpgrade(req, socket, head, (ws) => attach(ws));
  });

  function attach(ws: WebSocket): void {
    sockets.add(ws);
    const push = (message: DashboardMessage) => {
      if (ws.bufferedAmount > maxBuffer) {
        log.warn({ buffered: ws.bufferedAmount }, 'dashboard client too slow; closing its socket');
        ws.terminate();
        return;
      }
      ws.send(JSON.stringify(message));
    };
    const unsubscribe = hub.subscribe(push);
    ws.on('close', () => {
      unsubscribe();
      sockets.delete(ws);
    });
    ws.on('error', (err) => log.debug({ err }, 'dashboard socket error'));
    // Clients only listen; anything they send is ignored.
    push({ type: 'snapshot', data: hub.snapshot() });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new DrError(
              'MONITOR_PORT_IN_USE',
              `Dashboard port ${options.port} is in use: pick another with --dashboard-port (0 picks a free one).`,
              { cause: err },
            )
          : err,
      ),
    );
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  // A wildcard bind address is no address to open: show the advertised or machine host name instead.
  const shown = address === '0.0.0.0' || address === '::' ? (options.publicHost ?? hostname()) : address;
  const host = shown.includes(':') ? `[${shown}]` : shown;
  hub.start();
  log.info({ port, address }, 'dashboard listening');

  return {
    url: `http://${host}:${port}`,
    port,
    async close() {
      hub.stop();
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': type,
    'content-length': Buffer.byteLength(body),
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

async function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const LOGIN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dr dashboard: sign in</title>
<style>body{font:15px system-ui,sans-serif;background:#0f1419;color:#e6e6e6;display:grid;place-items:center;height:100vh;margin:0}
form{display:grid;gap:.6rem;padding:2rem;background:#1a212b;border-radius:8px}input,button{font:inherit;padding:.4rem}</style></head>
<body><form method="post" action="/login">
<h1>dr cluster dashboard</h1>
<p>Enter the cluster token or the dashboard read token.</p>
<input type="password" name="token" autocomplete="current-password" aria-label="token" autofocus>
<button type="submit">Sign in</button>
</form></body></html>
`;

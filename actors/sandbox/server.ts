/**
 * The sandbox web's HTTP server (node:http): pages at stable paths, a Serper-compatible search endpoint
 * (POST /search, also GET /search?q=&apiKey=), a Bing Web Search v7-shaped one (GET /v7.0/search), and
 * counters at GET /_sandbox/stats. Every response body is precomputed or memoised, so the per-request
 * work is a map lookup plus whatever delay the injector adds.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import { notFoundHtml, serverErrorHtml } from './html.ts';
import { Injector, parseInjection, type Fault, type InjectionConfig } from './injection.ts';
import { createRng, type Rng } from './rng.ts';
import { SearchIndex } from './search-index.ts';
import { buildSite, type Site } from './site.ts';
import type { World } from './world.ts';

/** The key a sandbox web expects unless told another: no secret (the sandbox is a local test web), but the
 * search endpoints check it the way Serper and Bing check theirs. */
export const SANDBOX_DEFAULT_API_KEY = 'sandbox-key';

export interface SandboxServerOptions {
  world: World;
  /** A site already built from `world` (saves the build when several servers share a world). */
  site?: Site;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Bind address; default 127.0.0.1. Use 0.0.0.0 to serve other nodes of a cluster. */
  host?: string;
  /** Base URL written into search results; default http://<host>:<port> (for 0.0.0.0, this machine's first
   * external IPv4 address). */
  publicUrl?: string;
  /** Key expected in X-API-KEY (Serper) and Ocp-Apim-Subscription-Key (Bing); default 'sandbox-key'. */
  apiKey?: string;
  /** Status for a missing or wrong key: 401 (default) or 403 (what google.serper.dev has been seen to send). */
  unauthorizedStatus?: 401 | 403;
  injection?: InjectionConfig;
  /** Extra delay on 'slow' pages; default 3,000 ms. */
  slowPageMs?: number;
  /** Probability that a request to a 'rate-limited' page gets a 429; default 0.5. */
  rateLimitedShare?: number;
}

export interface SandboxStats {
  requests: number;
  byRoute: { serper: number; bing: number; page: number; other: number };
  /** Individual search queries (a Serper batch counts each query). */
  searchQueries: number;
  /** Responses sent, by status code. */
  statuses: Record<string, number>;
  injected: {
    delayed: number;
    delayMsTotal: number;
    /** Largest single injected delay: the lower bound on the makespan of a concurrent fan-out. */
    delayMsMax: number;
    error500: number;
    rateLimit429: number;
    timeout: number;
    /** 429s from a rule's rate limit (token bucket), as opposed to random rateLimit429 faults. */
    throttled: number;
  };
  pageBehaviours: { slow: number; rateLimited: number };
  inFlight: number;
  maxInFlight: number;
}

export interface SandboxServer {
  /** Base URL of the pages, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Serper-compatible endpoint: POST JSON {q, num, gl, hl, page} with X-API-KEY. */
  searchUrl: string;
  /** Bing v7-shaped endpoint: GET ?q=&count=&offset= with Ocp-Apim-Subscription-Key. */
  bingUrl: string;
  apiKey: string;
  port: number;
  site: Site;
  stats(): SandboxStats;
  resetStats(): void;
  /** Replaces the injection config (e.g. between benchmark phases). */
  setInjection(config: InjectionConfig): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1 << 20;
const DRAIN_LIMIT_BYTES = 16 << 20;
const JSON_TYPE = 'application/json; charset=utf-8';

const serperQuerySchema = z
  .object({
    q: z.string().trim().min(1, 'q must be a non-empty string'),
    num: z.coerce.number().int().min(1).max(100).default(10),
    gl: z.string().default('us'),
    hl: z.string().default('en'),
    page: z.coerce.number().int().min(1).max(100).optional(),
    type: z.literal('search').optional(),
  })
  .loose();
const serperBodySchema = z.union([serperQuerySchema, z.array(serperQuerySchema).min(1).max(100)]);

function emptyStats(): SandboxStats {
  return {
    requests: 0,
    byRoute: { serper: 0, bing: 0, page: 0, other: 0 },
    searchQueries: 0,
    statuses: {},
    injected: {
      delayed: 0,
      delayMsTotal: 0,
      delayMsMax: 0,
      error500: 0,
      rateLimit429: 0,
      timeout: 0,
      throttled: 0,
    },
    pageBehaviours: { slow: 0, rateLimited: 0 },
    inFlight: 0,
    maxInFlight: 0,
  };
}

/** For a wildcard bind: this machine's first external IPv4 address, so other hosts can follow the links
 * in search results; loopback when it has none. */
function reachableAddress(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    const v4 = addrs?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4 !== undefined) return v4.address;
  }
  return '127.0.0.1';
}

/** The body, or null when it is over MAX_BODY_BYTES: the rest is drained (so the client reads the 413
 * instead of a reset) unless it goes on past DRAIN_LIMIT_BYTES, where the connection is cut. */
function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
      else if (size > DRAIN_LIMIT_BYTES) req.destroy();
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks)));
    req.on('close', () => resolve(null));
    req.on('error', reject);
  });
}

export async function startSandboxServer(options: SandboxServerOptions): Promise<SandboxServer> {
  const site = options.site ?? (await buildSite(options.world));
  const index = new SearchIndex(site.indexed);
  const apiKey = options.apiKey ?? SANDBOX_DEFAULT_API_KEY;
  const unauthorized = options.unauthorizedStatus ?? 401;
  const slowPageMs = options.slowPageMs ?? 3000;
  const rateLimitedShare = options.rateLimitedShare ?? 0.5;
  let injector = new Injector(parseInjection(options.injection ?? {}));
  const pageRng: Rng = createRng(options.injection?.seed ?? 0).fork('page-behaviour');
  let stats = emptyStats();
  let base = '';
  const sockets = new Set<Socket>();
  // Every pending timer (injected delays, slow pages, held timeouts), cleared on close so nothing outlives it.
  const holds = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void): NodeJS.Timeout => {
    const t = setTimeout(() => {
      holds.delete(t);
      fn();
    }, ms);
    holds.add(t);
    return t;
  };

  const send = (
    res: ServerResponse,
    req: IncomingMessage,
    status: number,
    type: string,
    body: Buffer | string,
    extra: Record<string, string> = {},
  ): void => {
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': buf.length, ...extra });
    res.end(req.method === 'HEAD' ? undefined : buf);
  };
  const sendJson = (
    res: ServerResponse,
    req: IncomingMessage,
    status: number,
    value: unknown,
    extra: Record<string, string> = {},
  ): void => send(res, req, status, JSON_TYPE, JSON.stringify(value), extra);
  const serperError = (
    res: ServerResponse,
    req: IncomingMessage,
    status: number,
    message: string,
    extra: Record<string, string> = {},
  ): void => sendJson(res, req, status, { message, statusCode: status }, extra);
  const bingError = (
    res: ServerResponse,
    req: IncomingMessage,
    status: number,
    code: string,
    message: string,
    parameter?: string,
  ): void =>
    sendJson(res, req, status, {
      _type: 'ErrorResponse',
      errors: [{ code, message, ...(parameter ? { parameter } : {}) }],
    });

  const serperResult = (q: z.infer<typeof serperQuerySchema>) => {
    stats.searchQueries++;
    const page = q.page ?? 1;
    const found = index.search(q.q, q.num, page);
    return {
      searchParameters: {
        q: q.q,
        gl: q.gl,
        hl: q.hl,
        type: 'search',
        num: q.num,
        ...(q.page !== undefined ? { page } : {}),
        engine: 'google',
      },
      organic: found.hits.map((h) => ({
        title: h.title,
        link: base + h.path,
        snippet: h.snippet,
        position: h.position,
      })),
      credits: 1,
    };
  };

  const handleSerper = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const key = (req.headers['x-api-key'] as string | undefined) ?? url.searchParams.get('apiKey') ?? '';
    if (key !== apiKey) return serperError(res, req, unauthorized, 'Unauthorized.');
    let input: unknown;
    if (req.method === 'GET')
      input = Object.fromEntries([...url.searchParams].filter(([k]) => k !== 'apiKey'));
    else if (req.method === 'POST') {
      const body = await readBody(req);
      if (body === null) return serperError(res, req, 413, 'Request body too large.');
      try {
        input = JSON.parse(body.toString('utf8'));
      } catch {
        return serperError(res, req, 400, 'Invalid JSON body: send {"q": "...", "num": 10}.');
      }
    } else return serperError(res, req, 405, 'Method not allowed: use POST.', { Allow: 'GET, POST' });
    const parsed = serperBodySchema.safeParse(input);
    if (!parsed.success) return serperError(res, req, 400, `Bad request: ${z.prettifyError(parsed.error)}`);
    const out = Array.isArray(parsed.data) ? parsed.data.map(serperResult) : serperResult(parsed.data);
    sendJson(res, req, 200, out);
  };

  const handleBing = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    if (req.headers['ocp-apim-subscription-key'] !== apiKey) {
      return sendJson(res, req, unauthorized, {
        error: {
          code: String(unauthorized),
          message:
            'Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.',
        },
      });
    }
    const q = (url.searchParams.get('q') ?? '').trim();
    if (q.length === 0)
      return bingError(res, req, 400, 'InvalidRequest', 'Required parameter is missing.', 'q');
    const count = Number(url.searchParams.get('count') ?? 10);
    const offset = Number(url.searchParams.get('offset') ?? 0);
    if (!Number.isInteger(count) || count < 1 || count > 50)
      return bingError(res, req, 400, 'InvalidRequest', 'Parameter has invalid value.', 'count');
    if (!Number.isInteger(offset) || offset < 0)
      return bingError(res, req, 400, 'InvalidRequest', 'Parameter has invalid value.', 'offset');
    stats.searchQueries++;
    // Bing pages by offset; the index pages by (num, page), so fetch enough to cover offset + count.
    const found = index.search(q, offset + count, 1);
    const value = found.hits.slice(offset).map((h, i) => ({
      id: `https://api.bing.microsoft.com/api/v7/#WebPages.${offset + i}`,
      name: h.title,
      url: base + h.path,
      displayUrl: (base + h.path).replace(/^https?:\/\//, ''),
      snippet: h.snippet,
      language: 'en',
      isNavigational: false,
    }));
    sendJson(res, req, 200, {
      _type: 'SearchResponse',
      queryContext: { originalQuery: q },
      webPages: {
        webSearchUrl: `${base}/search-page?q=${encodeURIComponent(q)}`,
        totalEstimatedMatches: found.total,
        value,
      },
    });
  };

  const handlePage = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, req, 405, 'text/plain', 'Method Not Allowed', { Allow: 'GET, HEAD' });
    let path = url.pathname;
    try {
      path = decodeURIComponent(path);
    } catch {
      return send(res, req, 400, 'text/plain', 'Bad Request: malformed percent-encoding in the path');
    }
    const page = site.pages.get(path);
    if (page === undefined) return send(res, req, 404, 'text/html; charset=utf-8', notFoundHtml(path));
    if (page.behaviour === 'rate-limited' && pageRng.next() < rateLimitedShare) {
      stats.pageBehaviours.rateLimited++;
      return send(
        res,
        req,
        429,
        'text/html; charset=utf-8',
        '<html><body><h1>429 Too Many Requests</h1></body></html>',
        { 'Retry-After': '2' },
      );
    }
    const respond = (): void =>
      send(
        res,
        req,
        page.status,
        page.contentType,
        page.body,
        page.location === undefined ? {} : { Location: page.location },
      );
    if (page.behaviour === 'slow') {
      stats.pageBehaviours.slow++;
      later(slowPageMs, respond);
      return;
    }
    respond();
  };

  const applyFault = (
    req: IncomingMessage,
    res: ServerResponse,
    fault: Fault,
    retryAfterS: number,
    isApi: boolean,
  ): void => {
    stats.injected[fault]++;
    if (fault === 'timeout') {
      // Accept and never answer: the client's own timeout has to fire. The socket is dropped eventually.
      const t = later(injector.timeoutHoldMs, () => req.socket.destroy());
      // A client that gives up first frees the hold at once.
      res.on('close', () => {
        clearTimeout(t);
        holds.delete(t);
      });
      return;
    }
    const status = fault === 'error500' ? 500 : 429;
    const extra: Record<string, string> = status === 429 ? { 'Retry-After': String(retryAfterS) } : {};
    if (isApi)
      serperError(res, req, status, status === 500 ? 'Internal server error.' : 'Too many requests.', extra);
    else
      send(
        res,
        req,
        status,
        'text/html; charset=utf-8',
        status === 500 ? serverErrorHtml() : '<html><body><h1>429 Too Many Requests</h1></body></html>',
        extra,
      );
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    if (url.pathname === '/_sandbox/stats') return sendJson(res, req, 200, stats);
    stats.requests++;
    const isSerper = url.pathname === '/search';
    const isBing = url.pathname === '/v7.0/search';
    if (isSerper) stats.byRoute.serper++;
    else if (isBing) stats.byRoute.bing++;
    else if (site.pages.has(url.pathname)) stats.byRoute.page++;
    else stats.byRoute.other++;
    const decision = injector.decide(url.pathname);
    if (decision.delayMs > 0) {
      stats.injected.delayed++;
      stats.injected.delayMsTotal += decision.delayMs;
      stats.injected.delayMsMax = Math.max(stats.injected.delayMsMax, decision.delayMs);
      // Lets a benchmark client compute each request's lower bound (sent at + injected delay).
      res.setHeader('X-Sandbox-Delay-Ms', decision.delayMs.toFixed(1));
      await new Promise<void>((r) => later(decision.delayMs, r));
    }
    if (decision.fault !== null) {
      return applyFault(
        req,
        res,
        decision.fault,
        decision.retryAfterS ?? injector.retryAfterS,
        isSerper || isBing,
      );
    }
    if (isSerper) return handleSerper(req, res, url);
    if (isBing) return handleBing(req, res, url);
    handlePage(req, res, url);
  };

  const server = createServer((req, res) => {
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    let done = false;
    const finish = (): void => {
      if (!done) {
        done = true;
        stats.inFlight--;
      }
    };
    res.on('close', finish);
    route(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, req, 500, 'text/plain', `sandbox error: ${String(err)}`);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 30_000;

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new DrError(
          'SANDBOX_LISTEN_FAILED',
          `sandbox server cannot listen on ${host}:${options.port ?? 0} (${err.code ?? err.message}); pick another --port`,
          { cause: err },
        ),
      ),
    );
    server.listen({ port: options.port ?? 0, host, backlog: 8192 }, resolve);
  });
  const port = (server.address() as { port: number }).port;
  base = (
    options.publicUrl ?? `http://${host === '0.0.0.0' || host === '::' ? reachableAddress() : host}:${port}`
  ).replace(/\/$/, '');

  return {
    url: base,
    searchUrl: `${base}/search`,
    bingUrl: `${base}/v7.0/search`,
    apiKey,
    port,
    site,
    stats: () => structuredClone(stats),
    resetStats: () => {
      const inFlight = stats.inFlight;
      stats = emptyStats();
      stats.inFlight = inFlight;
    },
    setInjection: (config) => {
      injector = new Injector(parseInjection(config));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of holds) clearTimeout(t);
        holds.clear();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/**
 * Local stand-ins for the paid search APIs, for tests: a node:http server that speaks Serper's
 * (POST /search, X-API-KEY, JSON body {q, num, gl, hl} -> {searchParameters, organic}) or Bing Web Search
 * v7's protocol (GET /v7.0/search?q&count&mkt&setLang, Ocp-Apim-Subscription-Key -> SearchResponse) or
 * SearXNG's JSON API (GET /search?q&format=json&language&pageno -> {query, results}), checks
 * every request field and header the real service needs, and fails on demand (401, 429 with Retry-After,
 * 500, malformed bodies, slow answers). Records each request so tests can assert on traffic.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Protocol = 'serper' | 'bing' | 'searxng';

export interface RecordedRequest {
  query: string;
  num: number;
  region?: string;
  language?: string;
  startedAt: number;
  status: number;
}

export interface ForcedReply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface SearchApiTestServer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Highest number of requests being answered at the same time. */
  readonly maxConcurrent: number;
  /** The next `times` requests get this reply instead of results. */
  failNext(reply: ForcedReply, times?: number): void;
  /** Every answer waits this long (ms). */
  setLatency(ms: number): void;
  close(): Promise<void>;
}

/** Queries containing this word get an empty result list. */
export const EMPTY_QUERY_MARKER = 'zzznothing';

function resultsFor(query: string, num: number): Array<{ title: string; link: string; snippet: string }> {
  if (query.includes(EMPTY_QUERY_MARKER)) return [];
  const slug = encodeURIComponent(query.toLowerCase().replace(/\s+/g, '-'));
  return Array.from({ length: num }, (_, i) => ({
    title: `${query} - result ${i + 1}`,
    link: `https://example.org/${slug}/${i + 1}`,
    snippet: `Snippet ${i + 1} about ${query}.`,
  }));
}

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(text);
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface Parsed {
  query: string;
  num: number;
  region?: string;
  language?: string;
}

type Check = { ok: true; parsed: Parsed } | { ok: false; status: number; body: unknown };

async function checkSerper(req: http.IncomingMessage, apiKey: string): Promise<Check> {
  if (req.method !== 'POST' || req.url !== '/search')
    return { ok: false, status: 404, body: { message: 'Not found', statusCode: 404 } };
  if (req.headers['x-api-key'] !== apiKey)
    return { ok: false, status: 401, body: { message: 'Unauthorized.', statusCode: 401 } };
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
    return {
      ok: false,
      status: 400,
      body: { message: 'Content-Type must be application/json', statusCode: 400 },
    };
  }
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(await readBody(req)) as Record<string, unknown>;
  } catch {
    return { ok: false, status: 400, body: { message: 'Invalid JSON body', statusCode: 400 } };
  }
  if (typeof body.q !== 'string' || body.q === '')
    return { ok: false, status: 400, body: { message: 'Missing query', statusCode: 400 } };
  const num = body.num === undefined ? 10 : body.num;
  if (typeof num !== 'number' || !Number.isInteger(num) || num < 1 || num > 100) {
    return { ok: false, status: 400, body: { message: 'num must be an integer in 1..100', statusCode: 400 } };
  }
  for (const field of ['gl', 'hl'] as const) {
    if (body[field] !== undefined && typeof body[field] !== 'string') {
      return { ok: false, status: 400, body: { message: `${field} must be a string`, statusCode: 400 } };
    }
  }
  return {
    ok: true,
    parsed: {
      query: body.q,
      num,
      ...(typeof body.gl === 'string' ? { region: body.gl } : {}),
      ...(typeof body.hl === 'string' ? { language: body.hl } : {}),
    },
  };
}

function bingError(status: number, code: string, message: string): Check {
  return { ok: false, status, body: { _type: 'ErrorResponse', errors: [{ code, message }] } };
}

function checkBing(req: http.IncomingMessage, apiKey: string): Check {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method !== 'GET' || url.pathname !== '/v7.0/search')
    return bingError(404, 'ResourceNotFound', 'Resource not found');
  if (req.headers['ocp-apim-subscription-key'] !== apiKey) {
    return {
      ok: false,
      status: 401,
      body: { error: { code: '401', message: 'Access denied due to invalid subscription key.' } },
    };
  }
  const q = url.searchParams.get('q');
  if (q === null || q === '') return bingError(400, 'InvalidRequest', 'Required parameter is missing: q');
  const count = Number(url.searchParams.get('count') ?? '10');
  if (!Number.isInteger(count) || count < 1 || count > 50)
    return bingError(400, 'InvalidRequest', 'Parameter has invalid value: count');
  const mkt = url.searchParams.get('mkt');
  if (mkt !== null && !/^[a-z]{2}-[A-Z]{2}$/.test(mkt))
    return bingError(400, 'InvalidRequest', 'Parameter has invalid value: mkt');
  const setLang = url.searchParams.get('setLang');
  return {
    ok: true,
    parsed: {
      query: q,
      num: count,
      ...(mkt === null ? {} : { region: mkt.slice(3) }),
      ...(setLang === null ? {} : { language: setLang }),
    },
  };
}

function checkSearxng(req: http.IncomingMessage): Check {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method !== 'GET' || url.pathname !== '/search')
    return { ok: false, status: 404, body: 'Not Found' };
  // SearXNG answers a format it was not configured for with 403.
  if (url.searchParams.get('format') !== 'json') return { ok: false, status: 403, body: 'Forbidden' };
  const q = url.searchParams.get('q');
  if (q === null || q === '') return { ok: false, status: 400, body: 'Bad Request' };
  const language = url.searchParams.get('language');
  return { ok: true, parsed: { query: q, num: 20, ...(language === null ? {} : { language }) } };
}

function resultBody(protocol: Protocol, parsed: Parsed): unknown {
  const results = resultsFor(parsed.query, parsed.num);
  if (protocol === 'serper') {
    return {
      searchParameters: { q: parsed.query, type: 'search', num: parsed.num, engine: 'google' },
      organic: results.map((r, i) => ({ ...r, position: i + 1 })),
      credits: 1,
    };
  }
  if (protocol === 'searxng') {
    return {
      query: parsed.query,
      number_of_results: results.length,
      results: results.map((r) => ({
        url: r.link,
        title: r.title,
        content: r.snippet,
        engine: 'duckduckgo',
        score: 1,
      })),
      answers: [],
      suggestions: [],
      unresponsive_engines: [],
    };
  }
  return {
    _type: 'SearchResponse',
    queryContext: { originalQuery: parsed.query },
    ...(results.length === 0
      ? {}
      : {
          webPages: {
            webSearchUrl: `https://www.bing.com/search?q=${encodeURIComponent(parsed.query)}`,
            totalEstimatedMatches: results.length,
            value: results.map((r, i) => ({
              id: `https://api.bing.microsoft.com/api/v7/#WebPages.${i}`,
              name: r.title,
              url: r.link,
              snippet: r.snippet,
            })),
          },
        }),
  };
}

export async function startSearchApiTestServer(
  protocol: Protocol,
  apiKey = '',
): Promise<SearchApiTestServer> {
  const requests: RecordedRequest[] = [];
  const forced: ForcedReply[] = [];
  let latencyMs = 0;
  let active = 0;
  let maxConcurrent = 0;

  const server = http.createServer((req, res) => {
    active += 1;
    maxConcurrent = Math.max(maxConcurrent, active);
    const startedAt = performance.now();
    void (async () => {
      const check =
        protocol === 'serper'
          ? await checkSerper(req, apiKey)
          : protocol === 'bing'
            ? checkBing(req, apiKey)
            : checkSearxng(req);
      if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
      const parsed = check.ok ? check.parsed : { query: '', num: 0 };
      const record = (status: number) => requests.push({ ...parsed, startedAt, status });
      if (!check.ok) {
        record(check.status);
        send(res, check.status, check.body);
        return;
      }
      const override = forced.shift();
      if (override !== undefined) {
        record(override.status);
        send(
          res,
          override.status,
          override.body ?? { message: `forced ${override.status}` },
          override.headers,
        );
        return;
      }
      record(200);
      send(res, 200, resultBody(protocol, check.parsed));
    })().finally(() => {
      active -= 1;
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get maxConcurrent() {
      return maxConcurrent;
    },
    failNext(reply, times = 1) {
      for (let i = 0; i < times; i++) forced.push(reply);
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Search API backends: Serper (Google), Bing Web Search v7, SearXNG's JSON API. Each turns a query into one
 * HTTP request, validates the response with zod and normalizes it to SearchHit[]. Failures become DrErrors
 * whose code says whether another attempt can help (see RETRYABLE_CODES); retrying, rate limiting and
 * breaking the circuit are the caller's business (search-client.ts).
 */
import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import type { SearchHit } from './protocol.ts';
import type { QueryParams } from './search-key.ts';

export type BackendKind = 'serper' | 'bing' | 'searxng';

export interface BackendOptions {
  kind: BackendKind;
  /** Defaults: https://google.serper.dev, https://api.bing.microsoft.com, none for SearXNG (self-hosted). */
  baseUrl?: string;
  /** Serper and Bing need one; SearXNG takes none. */
  apiKey?: string;
  /** Whole-request timeout. */
  timeoutMs?: number;
  /** Sockets kept per backend host; match the concurrency cap. */
  maxSockets?: number;
}

export interface SearchBackend {
  readonly kind: BackendKind;
  search(query: string, params: QueryParams): Promise<SearchHit[]>;
}

/** Codes after which the same request may succeed later. */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'SEARCH_RATE_LIMITED',
  'SEARCH_UPSTREAM',
  'SEARCH_TIMEOUT',
  'SEARCH_NETWORK',
]);

const DEFAULT_BASE_URLS: Record<BackendKind, string | undefined> = {
  serper: 'https://google.serper.dev',
  bing: 'https://api.bing.microsoft.com',
  searxng: undefined,
};

const serperResponseSchema = z.object({
  organic: z
    .array(z.object({ title: z.string(), link: z.string(), snippet: z.string().optional() }))
    .optional(),
});

const bingResponseSchema = z.object({
  _type: z.literal('SearchResponse'),
  webPages: z
    .object({
      value: z.array(z.object({ name: z.string(), url: z.string(), snippet: z.string().optional() })),
    })
    .optional(),
});

const searxngResponseSchema = z.object({
  results: z.array(z.object({ title: z.string(), url: z.string(), content: z.string().optional() })),
});

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: unknown, now = Date.now()): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function statusError(kind: BackendKind, res: AxiosResponse): DrError {
  const status = res.status;
  const details = { backend: kind, status };
  if (status === 401 || status === 403) {
    return new DrError(
      'SEARCH_AUTH',
      `${kind} rejected the API key (HTTP ${status}); set a valid key in the environment variable named by the search backend config`,
      { details },
    );
  }
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
    return new DrError(
      'SEARCH_RATE_LIMITED',
      `${kind} is rate limiting us (HTTP 429); lower search.rateLimit.perSecond`,
      {
        details: retryAfterMs === undefined ? details : { ...details, retryAfterMs },
      },
    );
  }
  if (status >= 500) return new DrError('SEARCH_UPSTREAM', `${kind} failed with HTTP ${status}`, { details });
  return new DrError(
    'SEARCH_HTTP',
    `${kind} answered HTTP ${status}; check the backend base URL and parameters`,
    {
      details,
    },
  );
}

function transportError(kind: BackendKind, err: unknown): DrError {
  const code = axios.isAxiosError(err) ? err.code : undefined;
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
    return new DrError('SEARCH_TIMEOUT', `${kind} did not answer in time`, {
      cause: err,
      details: { backend: kind },
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new DrError('SEARCH_NETWORK', `could not reach ${kind}: ${message}`, {
    cause: err,
    details: { backend: kind },
  });
}

function parseBody<T>(kind: BackendKind, schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new DrError(
      'SEARCH_BAD_RESPONSE',
      `${kind} sent a response that is not a valid search result: ${z.prettifyError(parsed.error)}`,
      {
        details: { backend: kind },
      },
    );
  }
  return parsed.data;
}

function hit(title: string, url: string, snippet: string | undefined): SearchHit {
  return { title: title.trim(), url: url.trim(), snippet: (snippet ?? '').replace(/\s+/g, ' ').trim() };
}

/** Bing's market is language-COUNTRY, e.g. en-US. */
function bingParams(query: string, params: QueryParams): Record<string, string | number> {
  const out: Record<string, string | number> = { q: query, count: params.topK, responseFilter: 'Webpages' };
  if (params.language !== undefined && params.region !== undefined) {
    out.mkt = `${params.language.toLowerCase()}-${params.region.toUpperCase()}`;
  }
  if (params.language !== undefined) out.setLang = params.language;
  return out;
}

function searxngLanguage(params: QueryParams): string | undefined {
  if (params.language === undefined) return undefined;
  return params.region === undefined
    ? params.language
    : `${params.language.toLowerCase()}-${params.region.toUpperCase()}`;
}

class HttpSearchBackend implements SearchBackend {
  readonly kind: BackendKind;
  private readonly http: AxiosInstance;
  private readonly apiKey: string | undefined;

  constructor(options: BackendOptions) {
    this.kind = options.kind;
    const baseURL = options.baseUrl ?? DEFAULT_BASE_URLS[options.kind];
    if (baseURL === undefined) {
      throw new DrError(
        'SEARCH_CONFIG',
        `the ${options.kind} backend needs baseUrl (the address of your instance)`,
      );
    }
    if (options.kind !== 'searxng' && (options.apiKey === undefined || options.apiKey === '')) {
      throw new DrError(
        'SEARCH_CONFIG',
        `the ${options.kind} backend needs an API key; set it in the environment`,
      );
    }
    this.apiKey = options.apiKey;
    const maxSockets = options.maxSockets ?? 64;
    this.http = axios.create({
      baseURL,
      timeout: options.timeoutMs ?? 15_000,
      validateStatus: () => true,
      httpAgent: new http.Agent({ keepAlive: true, maxSockets }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets }),
      headers: { Accept: 'application/json' },
    });
  }

  async search(query: string, params: QueryParams): Promise<SearchHit[]> {
    let res: AxiosResponse;
    try {
      res = await this.request(query, params);
    } catch (err) {
      throw transportError(this.kind, err);
    }
    if (res.status !== 200) throw statusError(this.kind, res);
    return this.normalize(res.data).slice(0, params.topK);
  }

  private request(query: string, params: QueryParams): Promise<AxiosResponse> {
    switch (this.kind) {
      case 'serper':
        return this.http.post(
          '/search',
          {
            q: query,
            num: params.topK,
            ...(params.region === undefined ? {} : { gl: params.region.toLowerCase() }),
            ...(params.language === undefined ? {} : { hl: params.language.toLowerCase() }),
          },
          { headers: { 'X-API-KEY': this.apiKey, 'Content-Type': 'application/json' } },
        );
      case 'bing':
        return this.http.get('/v7.0/search', {
          params: bingParams(query, params),
          headers: { 'Ocp-Apim-Subscription-Key': this.apiKey },
        });
      case 'searxng': {
        const language = searxngLanguage(params);
        return this.http.get('/search', {
          params: { q: query, format: 'json', pageno: 1, ...(language === undefined ? {} : { language }) },
        });
      }
    }
  }

  private normalize(body: unknown): SearchHit[] {
    switch (this.kind) {
      case 'serper':
        return (parseBody(this.kind, serperResponseSchema, body).organic ?? []).map((r) =>
          hit(r.title, r.link, r.snippet),
        );
      case 'bing':
        return (parseBody(this.kind, bingResponseSchema, body).webPages?.value ?? []).map((r) =>
          hit(r.name, r.url, r.snippet),
        );
      case 'searxng':
        return parseBody(this.kind, searxngResponseSchema, body).results.map((r) =>
          hit(r.title, r.url, r.content),
        );
    }
  }
}

export function createSearchBackend(options: BackendOptions): SearchBackend {
  return new HttpSearchBackend(options);
}

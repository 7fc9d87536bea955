/**
 * Fetches one URL the way a careful browser would: a browser-like User-Agent, separate connect, idle-read
 * and whole-request timeouts, a cap on the (decompressed) body size, and redirects followed by hand so that
 * every hop goes through the URL policy again. Connections go through agents whose DNS lookup enforces the
 * policy (url-safety.ts).
 */
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import type { Readable } from 'node:stream';
import { DrError, isDrError } from '../../config/errors.ts';
import type { UrlPolicy } from './url-safety.ts';

export interface FetchOptions {
  connectTimeoutMs?: number;
  /** Longest silence while waiting for or reading the response. */
  readTimeoutMs?: number;
  /** Whole fetch, redirects included. */
  totalTimeoutMs?: number;
  maxRedirects?: number;
  maxBytes?: number;
  userAgent?: string;
}

export interface FetchedPage {
  /** The URL that was finally read, after redirects. */
  url: string;
  status: number;
  /** Lower-cased media type without parameters, '' when the server sent none. */
  mediaType: string;
  charset: string | undefined;
  body: Buffer;
  redirects: string[];
}

export const BROWSER_USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

const DEFAULTS: Required<FetchOptions> = {
  connectTimeoutMs: 5_000,
  readTimeoutMs: 15_000,
  totalTimeoutMs: 30_000,
  maxRedirects: 5,
  maxBytes: 5 * 1024 * 1024,
  userAgent: BROWSER_USER_AGENT,
};

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

interface Hop {
  status: number;
  location?: string;
  mediaType: string;
  charset: string | undefined;
  body?: Buffer;
}

function parseContentType(header: string | undefined): { mediaType: string; charset: string | undefined } {
  if (header === undefined) return { mediaType: '', charset: undefined };
  const [type = '', ...params] = header.split(';');
  const charset = params
    .map((p) => p.trim().match(/^charset\s*=\s*"?([^";]+)"?$/i)?.[1])
    .find((c) => c !== undefined);
  return { mediaType: type.trim().toLowerCase(), charset: charset?.toLowerCase() };
}

function decoded(res: http.IncomingMessage): Readable {
  switch ((res.headers['content-encoding'] ?? '').trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return res.pipe(zlib.createGunzip());
    case 'br':
      return res.pipe(zlib.createBrotliDecompress());
    case 'deflate':
      return res.pipe(zlib.createInflate());
    default:
      return res;
  }
}

export class PageFetcher {
  private readonly options: Required<FetchOptions>;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(
    private readonly policy: UrlPolicy,
    options: FetchOptions = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
    const lookup = policy.lookup();
    this.httpAgent = new http.Agent({ keepAlive: true, lookup });
    this.httpsAgent = new https.Agent({ keepAlive: true, lookup });
  }

  async fetch(rawUrl: string): Promise<FetchedPage> {
    const deadline = AbortSignal.timeout(this.options.totalTimeoutMs);
    const redirects: string[] = [];
    const seen = new Set<string>();
    let url = this.policy.checkUrl(rawUrl);
    for (;;) {
      seen.add(url.href);
      const hop = await this.request(url, deadline);
      if (!REDIRECTS.has(hop.status) || hop.location === undefined) {
        if (hop.status >= 400) {
          throw new DrError('BROWSE_HTTP_STATUS', `the server answered HTTP ${hop.status}`, {
            details: { url: url.href, status: hop.status },
          });
        }
        return {
          url: url.href,
          status: hop.status,
          mediaType: hop.mediaType,
          charset: hop.charset,
          body: hop.body ?? Buffer.alloc(0),
          redirects,
        };
      }
      const next = this.policy.checkUrl(hop.location, url.href);
      if (seen.has(next.href)) {
        throw new DrError('BROWSE_REDIRECT_LOOP', `redirects loop back to ${next.href}`, {
          details: { redirects },
        });
      }
      if (redirects.length >= this.options.maxRedirects) {
        throw new DrError('BROWSE_TOO_MANY_REDIRECTS', `more than ${this.options.maxRedirects} redirects`, {
          details: { redirects },
        });
      }
      redirects.push(next.href);
      url = next;
    }
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private request(url: URL, deadline: AbortSignal): Promise<Hop> {
    const { connectTimeoutMs, readTimeoutMs, maxBytes, userAgent } = this.options;
    const client = url.protocol === 'https:' ? https : http;
    return new Promise<Hop>((resolve, reject) => {
      let settled = false;
      let connectTimer: NodeJS.Timeout | undefined;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        req.destroy();
        reject(err);
      };
      const onDeadline = (): void =>
        fail(
          new DrError('BROWSE_TIMEOUT', `the page took longer than ${this.options.totalTimeoutMs} ms`, {
            details: { url: url.href },
          }),
        );
      const req = client.request(url, {
        method: 'GET',
        agent: url.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
        headers: {
          'User-Agent': userAgent,
          Accept:
            'text/html,application/xhtml+xml,application/xml;q=0.9,application/pdf,text/plain;q=0.8,*/*;q=0.5',
          'Accept-Language': 'en-US,en;q=0.9',
          'Accept-Encoding': 'gzip, deflate, br',
        },
      });
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(
          () =>
            fail(
              new DrError('BROWSE_TIMEOUT', `could not connect within ${connectTimeoutMs} ms`, {
                details: { url: url.href },
              }),
            ),
          connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      req.setTimeout(readTimeoutMs, () =>
        fail(
          new DrError('BROWSE_TIMEOUT', `the server went silent for ${readTimeoutMs} ms`, {
            details: { url: url.href },
          }),
        ),
      );
      deadline.addEventListener('abort', onDeadline, { once: true });
      req.on('error', (err) => {
        fail(
          isDrError(err)
            ? err
            : new DrError('BROWSE_NETWORK', `could not load the page: ${err.message}`, {
                cause: err,
                details: { url: url.href },
              }),
        );
      });
      req.on('close', () => deadline.removeEventListener('abort', onDeadline));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        const { mediaType, charset } = parseContentType(res.headers['content-type']);
        if (REDIRECTS.has(status) || status >= 400) {
          res.resume();
          settled = true;
          resolve({
            status,
            mediaType,
            charset,
            ...(res.headers.location === undefined ? {} : { location: res.headers.location }),
          });
          return;
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) {
          fail(tooLarge(url, maxBytes));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        const body = decoded(res);
        body.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            body.destroy();
            fail(tooLarge(url, maxBytes));
            return;
          }
          chunks.push(chunk);
        });
        body.on('error', (err) =>
          fail(
            new DrError('BROWSE_NETWORK', `the page body could not be read: ${err.message}`, {
              cause: err,
              details: { url: url.href },
            }),
          ),
        );
        body.on('end', () => {
          if (settled) return;
          settled = true;
          resolve({ status, mediaType, charset, body: Buffer.concat(chunks) });
        });
      });
      req.end();
    });
  }
}

function tooLarge(url: URL, maxBytes: number): DrError {
  return new DrError('BROWSE_TOO_LARGE', `the page is larger than ${Math.round(maxBytes / 1024)} KiB`, {
    details: { url: url.href, maxBytes },
  });
}

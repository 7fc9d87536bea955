import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { DrError } from '../../config/errors.ts';

export const TOKEN_COOKIE = 'dr_token';

/**
 * Who may read the dashboard: anyone presenting one of the accepted tokens (the cluster token, or a separate
 * read-only token) as `Authorization: Bearer <token>` or in the `dr_token` cookie that the login form sets.
 */
export class TokenGate {
  readonly #digests: Buffer[];

  constructor(tokens: readonly string[]) {
    const usable = tokens.filter((t) => t.length > 0);
    if (usable.length === 0) {
      throw new DrError(
        'MONITOR_NO_TOKEN',
        'The dashboard needs a token: set the cluster token (DR_TOKEN or .dr-token) or DR_DASHBOARD_TOKEN.',
      );
    }
    this.#digests = usable.map(digest);
  }

  /** Constant-time check of one presented token against every accepted one. */
  accepts(token: string | undefined): boolean {
    if (token === undefined || token.length === 0) return false;
    const presented = digest(token);
    let ok = false;
    for (const d of this.#digests) ok = timingSafeEqual(d, presented) || ok;
    return ok;
  }

  /** The token a request carries, header first, then cookie. */
  static presented(req: IncomingMessage): string | undefined {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      return match?.[1];
    }
    return readCookie(req.headers.cookie, TOKEN_COOKIE);
  }

  allows(req: IncomingMessage): boolean {
    return this.accepts(TokenGate.presented(req));
  }
}

export function tokenCookie(token: string, secure: boolean): string {
  return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of header?.split(';') ?? []) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/**
 * Per-API-key admission: a token bucket (sustained rate with a burst allowance) plus a cap on calls in
 * flight. Waiters are served first come, first served, with a single timer for the whole queue, so a burst
 * of thousands of queries costs one pending promise each and nothing more.
 */
import { DrError } from '../../config/errors.ts';

export interface RateLimitOptions {
  /** Sustained calls per second. */
  perSecond: number;
  /** Calls allowed back to back after an idle period. */
  burst: number;
  /** Calls in flight at once. */
  maxConcurrent: number;
}

export type Release = () => void;

export class RateLimiter {
  private tokens: number;
  private lastRefill: number;
  private inFlight = 0;
  private readonly waiters: Array<(release: Release) => void> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: RateLimitOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(options.perSecond > 0) || !(options.burst >= 1) || !(options.maxConcurrent >= 1)) {
      throw new DrError(
        'SEARCH_CONFIG',
        `rate limit needs perSecond > 0, burst >= 1 and maxConcurrent >= 1 (got ${JSON.stringify(options)})`,
      );
    }
    this.tokens = options.burst;
    this.lastRefill = now();
  }

  /** Resolves when the call may start; call the returned function when it has finished. */
  acquire(): Promise<Release> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.pump();
    });
  }

  get pending(): number {
    return this.waiters.length;
  }

  get active(): number {
    return this.inFlight;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(
      this.options.burst,
      this.tokens + ((now - this.lastRefill) * this.options.perSecond) / 1000,
    );
    this.lastRefill = now;
  }

  private pump(): void {
    this.refill();
    while (this.waiters.length > 0 && this.inFlight < this.options.maxConcurrent && this.tokens >= 1) {
      this.tokens -= 1;
      this.inFlight += 1;
      const resolve = this.waiters.shift() as (release: Release) => void;
      let released = false;
      resolve(() => {
        if (released) return;
        released = true;
        this.inFlight -= 1;
        this.pump();
      });
    }
    // Waiting on concurrency needs no timer: a release pumps. Waiting on tokens does.
    if (this.waiters.length > 0 && this.inFlight < this.options.maxConcurrent && this.timer === undefined) {
      const waitMs = ((1 - this.tokens) * 1000) / this.options.perSecond;
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.pump();
        },
        Math.max(1, Math.ceil(waitMs)),
      );
    }
  }
}

/** One limiter per API key, shared by every SearchActor of a process that uses that key. */
export class KeyedRateLimiters {
  private readonly limiters = new Map<string, RateLimiter>();

  forKey(key: string, options: RateLimitOptions): RateLimiter {
    let limiter = this.limiters.get(key);
    if (limiter === undefined) {
      limiter = new RateLimiter(options);
      this.limiters.set(key, limiter);
    }
    return limiter;
  }
}

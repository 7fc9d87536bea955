/**
 * Retries with exponential backoff and full jitter. A server's Retry-After (carried as
 * `details.retryAfterMs` on the error) is a floor for the next delay. When attempts run out the caller gets
 * SEARCH_RETRIES_EXHAUSTED with the last error as its cause.
 */
import { DrError, isDrError } from '../../config/errors.ts';

export interface RetryPolicy {
  /** Total attempts, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Upper bound on a server-requested wait, so a hostile Retry-After cannot park a call for hours. */
  maxRetryAfterMs: number;
}

export interface RetryHooks {
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  onRetry?: (attempt: number, delayMs: number, err: DrError) => void;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function backoffDelay(
  attempt: number,
  policy: RetryPolicy,
  random: () => number,
  retryAfterMs?: number,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = random() * ceiling;
  return retryAfterMs === undefined
    ? jittered
    : Math.max(jittered, Math.min(retryAfterMs, policy.maxRetryAfterMs));
}

export async function withRetry<T>(
  call: () => Promise<T>,
  isRetryable: (err: unknown) => boolean,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<T> {
  const sleep = hooks.sleep ?? defaultSleep;
  const random = hooks.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isRetryable(err)) throw err;
      const drErr = isDrError(err) ? err : new DrError('SEARCH_UNKNOWN', String(err), { cause: err });
      if (attempt >= policy.maxAttempts) {
        throw new DrError(
          'SEARCH_RETRIES_EXHAUSTED',
          `search failed after ${attempt} attempts (last: ${drErr.code}: ${drErr.message}); retry later or raise search.retry.maxAttempts`,
          { cause: err, details: { attempts: attempt, lastCode: drErr.code } },
        );
      }
      const retryAfter = drErr.details?.retryAfterMs;
      const delay = backoffDelay(
        attempt,
        policy,
        random,
        typeof retryAfter === 'number' ? retryAfter : undefined,
      );
      hooks.onRetry?.(attempt, delay, drErr);
      await sleep(delay);
    }
  }
}

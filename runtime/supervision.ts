import type { SupervisionPolicy } from './actor.ts';

/** Restart with backoff, at most 5 restarts a minute; then the actor is escalated (stopped and marked failed). */
export const defaultSupervision: SupervisionPolicy = {
  strategy: 'restart',
  maxRestarts: 5,
  windowMs: 60_000,
  backoffInitialMs: 100,
  backoffMaxMs: 10_000,
};

export function resolvePolicy(partial: Partial<SupervisionPolicy> | undefined): SupervisionPolicy {
  return { ...defaultSupervision, ...partial };
}

export type RestartDecision = { restart: true; backoffMs: number } | { restart: false };

/**
 * Counts failures in a sliding window. Memory is bounded by `maxRestarts + 1` timestamps, so an actor that
 * fails steadily for a week holds no more than one that failed once.
 */
export class RestartBudget {
  private readonly failures: number[] = [];

  constructor(private readonly policy: SupervisionPolicy) {}

  /** Record a failure at `now` and say whether another restart is allowed, and after how long. */
  onFailure(now: number): RestartDecision {
    const { windowMs, maxRestarts, backoffInitialMs, backoffMaxMs } = this.policy;
    while (this.failures.length > 0 && now - (this.failures[0] ?? 0) > windowMs) this.failures.shift();
    this.failures.push(now);
    if (this.failures.length > maxRestarts) {
      this.failures.splice(0, this.failures.length - maxRestarts);
      return { restart: false };
    }
    const backoffMs = Math.min(backoffMaxMs, backoffInitialMs * 2 ** (this.failures.length - 1));
    return { restart: true, backoffMs };
  }
}

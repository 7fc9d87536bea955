/**
 * Stops calling a backend that keeps failing: after `failureThreshold` consecutive failures the circuit
 * opens and calls fail at once with SEARCH_CIRCUIT_OPEN; after `cooldownMs` one trial call goes through
 * (half-open) and its outcome closes or re-opens the circuit.
 */
import { DrError } from '../../config/errors.ts';

export interface BreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private current: BreakerState = 'closed';
  private trialInFlight = false;

  constructor(
    private readonly name: string,
    private readonly options: BreakerOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): BreakerState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.options.cooldownMs)
      this.current = 'half-open';
    return this.current;
  }

  /** Runs `call` unless the circuit is open; `countsAsFailure` says which errors indicate a sick backend. */
  async run<T>(call: () => Promise<T>, countsAsFailure: (err: unknown) => boolean): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.trialInFlight)) {
      const retryInMs = Math.max(0, this.openedAt + this.options.cooldownMs - this.now());
      throw new DrError(
        'SEARCH_CIRCUIT_OPEN',
        `${this.name} failed ${this.options.failureThreshold} times in a row; calls are paused (next trial in ${Math.ceil(retryInMs)} ms)`,
        { details: { backend: this.name, retryInMs } },
      );
    }
    const trial = state === 'half-open';
    if (trial) this.trialInFlight = true;
    try {
      const result = await call();
      this.failures = 0;
      this.current = 'closed';
      return result;
    } catch (err) {
      if (countsAsFailure(err)) this.recordFailure(trial);
      else if (trial) this.current = 'closed';
      throw err;
    } finally {
      if (trial) this.trialInFlight = false;
    }
  }

  private recordFailure(trial: boolean): void {
    this.failures += 1;
    if (trial || this.failures >= this.options.failureThreshold) {
      this.current = 'open';
      this.openedAt = this.now();
    }
  }
}

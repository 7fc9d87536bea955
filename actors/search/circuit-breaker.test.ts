import { describe, expect, it } from 'vitest';
import { DrError } from '../../config/errors.ts';
import { CircuitBreaker } from './circuit-breaker.ts';

const failing = () => Promise.reject(new DrError('SEARCH_UPSTREAM', 'down'));
const ok = () => Promise.resolve('fine');
const isFailure = () => true;

describe('CircuitBreaker', () => {
  it('opens after the threshold, lets one trial through after the cooldown, and closes when it succeeds', async () => {
    let now = 0;
    const breaker = new CircuitBreaker('serper', { failureThreshold: 2, cooldownMs: 1_000 }, () => now);
    await breaker.run(failing, isFailure).catch(() => undefined);
    await breaker.run(failing, isFailure).catch(() => undefined);

    await expect(breaker.run(ok, isFailure)).rejects.toMatchObject({ code: 'SEARCH_CIRCUIT_OPEN' });
    now = 1_000;
    expect(breaker.state).toBe('half-open');
    await expect(breaker.run(ok, isFailure)).resolves.toBe('fine');
    expect(breaker.state).toBe('closed');
  });

  it('re-opens when the half-open trial fails', async () => {
    let now = 0;
    const breaker = new CircuitBreaker('bing', { failureThreshold: 1, cooldownMs: 500 }, () => now);
    await breaker.run(failing, isFailure).catch(() => undefined);
    now = 500;

    await expect(breaker.run(failing, isFailure)).rejects.toMatchObject({ code: 'SEARCH_UPSTREAM' });

    expect(breaker.state).toBe('open');
    await expect(breaker.run(ok, isFailure)).rejects.toMatchObject({ code: 'SEARCH_CIRCUIT_OPEN' });
  });

  it('does not count errors that say nothing about the backend’s health', async () => {
    const breaker = new CircuitBreaker('serper', { failureThreshold: 1, cooldownMs: 1_000 });

    await breaker
      .run(
        () => Promise.reject(new DrError('SEARCH_AUTH', 'bad key')),
        () => false,
      )
      .catch(() => undefined);

    expect(breaker.state).toBe('closed');
  });
});

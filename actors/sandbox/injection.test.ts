import { afterEach, describe, expect, it } from 'vitest';
import { isDrError } from '../../config/errors.ts';
import { Injector, parseInjection, parseLatencySpec, sampleLatency, type LatencySpec } from './injection.ts';
import { createRng } from './rng.ts';
import { startSandboxServer, type SandboxServer } from './server.ts';
import { generateWorld } from './world.ts';

function draws(spec: LatencySpec, n: number): number[] {
  const rng = createRng(99);
  return Array.from({ length: n }, () => sampleLatency(spec, rng.next(), rng.next())).sort((a, b) => a - b);
}
const quantile = (sorted: number[], q: number): number => sorted[Math.floor(q * (sorted.length - 1))] ?? NaN;

describe('latency distributions', () => {
  it('draws lognormal latency with the configured median and a heavy right tail', () => {
    const xs = draws({ kind: 'lognormal', medianMs: 50, sigma: 1 }, 20_000);
    expect(quantile(xs, 0.5)).toBeGreaterThan(45);
    expect(quantile(xs, 0.5)).toBeLessThan(55);
    // exp(2.326) ≈ 10.2: the p99 of a sigma-1 lognormal is about ten times its median.
    expect(quantile(xs, 0.99) / quantile(xs, 0.5)).toBeGreaterThan(8);
  });

  it('draws Pareto latency at or above its scale and respects the cap', () => {
    const xs = draws({ kind: 'pareto', scaleMs: 10, alpha: 1.5, capMs: 500 }, 20_000);
    expect(xs[0]).toBeGreaterThanOrEqual(10);
    expect(xs.at(-1)).toBeLessThanOrEqual(500);
    // P(X > 2 * scale) = 2^-alpha ≈ 0.354
    const above = xs.filter((x) => x > 20).length / xs.length;
    expect(above).toBeGreaterThan(0.33);
    expect(above).toBeLessThan(0.38);
  });

  it('draws uniform latency within its bounds', () => {
    const xs = draws({ kind: 'uniform', minMs: 5, maxMs: 15 }, 1000);
    expect(xs[0]).toBeGreaterThanOrEqual(5);
    expect(xs.at(-1)).toBeLessThanOrEqual(15);
  });

  it('parses the CLI latency forms and rejects malformed ones with a typed error', () => {
    expect(parseLatencySpec('fixed:20')).toEqual({ kind: 'fixed', ms: 20 });
    expect(parseLatencySpec('lognormal:50:1:2000')).toEqual({
      kind: 'lognormal',
      medianMs: 50,
      sigma: 1,
      capMs: 2000,
    });
    expect(parseLatencySpec('pareto:10:1.5')).toEqual({ kind: 'pareto', scaleMs: 10, alpha: 1.5 });
    for (const bad of ['fixed', 'gaussian:3', 'uniform:a:b', 'fixed:-5']) {
      expect(() => parseLatencySpec(bad)).toThrow(expect.objectContaining({ code: 'SANDBOX_BAD_INJECTION' }));
    }
  });

  it('rejects fault rates that sum past 1', () => {
    let err: unknown;
    try {
      parseInjection({ rules: [{ faults: { error500: 0.7, rateLimit429: 0.5 } }] });
    } catch (e) {
      err = e;
    }
    expect(isDrError(err, 'SANDBOX_BAD_INJECTION')).toBe(true);
  });
});

describe('Injector', () => {
  it('applies the first rule whose path prefix matches, and nothing elsewhere', () => {
    const inj = new Injector({
      seed: 1,
      rules: [
        { pathPrefix: '/search', faults: { error500: 1 } },
        { pathPrefix: '/wiki/', latency: { kind: 'fixed', ms: 7 } },
      ],
    });
    expect(inj.decide('/search')).toEqual({ delayMs: 0, fault: 'error500' });
    expect(inj.decide('/wiki/X')).toEqual({ delayMs: 7, fault: null });
    expect(inj.decide('/news/x')).toEqual({ delayMs: 0, fault: null });
  });

  it('throttles past a token bucket and says in Retry-After when the next token comes', () => {
    const inj = new Injector({ rules: [{ pathPrefix: '/search', rateLimit: { perSecond: 10, burst: 5 } }] });
    const burst = Array.from({ length: 6 }, () => inj.decide('/search', 0));
    expect(burst.filter((d) => d.fault === null)).toHaveLength(5);
    expect(burst[5]).toMatchObject({ fault: 'throttled', retryAfterS: 1 });
    // Refilled to the burst size after a second, never beyond it.
    const later = Array.from({ length: 6 }, () => inj.decide('/search', 1000));
    expect(later.filter((d) => d.fault === null)).toHaveLength(5);
    // A steady 50/s for 10 s gets through at the bucket's 10/s.
    let passed = 0;
    for (let t = 2000; t < 12_000; t += 20) if (inj.decide('/search', t).fault === null) passed++;
    expect(passed).toBeGreaterThanOrEqual(99);
    expect(passed).toBeLessThanOrEqual(106);
    expect(inj.decide('/wiki/X', 12_000).fault).toBeNull();
  });

  it('is reproducible for the same seed', () => {
    const config = {
      seed: 4,
      rules: [
        {
          faults: { error500: 0.3, timeout: 0.2 },
          latency: { kind: 'lognormal' as const, medianMs: 10, sigma: 1 },
        },
      ],
    };
    const a = new Injector(config);
    const b = new Injector(config);
    for (let i = 0; i < 100; i++) expect(a.decide('/x')).toEqual(b.decide('/x'));
  });
});

describe('injection on a live server', () => {
  const world = generateWorld({ seed: 41, size: 60 });
  let srv: SandboxServer | undefined;
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });

  it('fails search requests with 500 and 429 (with Retry-After) at the configured rates', async () => {
    srv = await startSandboxServer({
      world,
      injection: {
        seed: 7,
        retryAfterS: 3,
        rules: [{ pathPrefix: '/search', faults: { error500: 0.1, rateLimit429: 0.2 } }],
      },
    });
    const n = 400;
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < n; i++) {
      const r = await fetch(srv.searchUrl, {
        method: 'POST',
        headers: { 'X-API-KEY': srv.apiKey },
        body: JSON.stringify({ q: 'river' }),
      });
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers.get('retry-after');
      await r.arrayBuffer();
    }
    const count = (s: number) => statuses.filter((x) => x === s).length;
    expect(count(500) / n).toBeGreaterThan(0.06);
    expect(count(500) / n).toBeLessThan(0.14);
    expect(count(429) / n).toBeGreaterThan(0.15);
    expect(count(429) / n).toBeLessThan(0.25);
    expect(retryAfter).toBe('3');
    const s = srv.stats();
    expect(s.injected.error500).toBe(count(500));
    expect(s.injected.rateLimit429).toBe(count(429));
    expect(count(200)).toBe(n - count(500) - count(429));
  });

  it('answers a burst over the rate limit with 429s and counts them as throttled', async () => {
    srv = await startSandboxServer({
      world,
      injection: { rules: [{ pathPrefix: '/search', rateLimit: { perSecond: 0.5, burst: 3 } }] },
    });
    const statuses = await Promise.all(
      Array.from({ length: 10 }, () =>
        fetch(srv?.searchUrl ?? '', {
          method: 'POST',
          headers: { 'X-API-KEY': srv?.apiKey ?? '' },
          body: JSON.stringify({ q: 'river' }),
        }).then(async (r) => [r.status, r.headers.get('retry-after'), await r.json()] as const),
      ),
    );
    expect(statuses.filter(([s]) => s === 200)).toHaveLength(3);
    const limited = statuses.filter(([s]) => s === 429);
    expect(limited).toHaveLength(7);
    expect(limited[0]?.[1]).toBe('2');
    expect(limited[0]?.[2]).toEqual({ message: 'Too many requests.', statusCode: 429 });
    expect(srv.stats().injected.throttled).toBe(7);
  });

  it('never answers an injected timeout and drops its connection after the hold', async () => {
    srv = await startSandboxServer({
      world,
      injection: { seed: 2, timeoutHoldMs: 400, rules: [{ pathPrefix: '/wiki/', faults: { timeout: 0.5 } }] },
    });
    const path = `/wiki/${world.entities[0]?.slug}`;
    const t0 = performance.now();
    // No client timeout: a request either gets its page or has its connection dropped by the server.
    const results = await Promise.all(
      Array.from({ length: 40 }, () =>
        fetch(srv?.url + path).then(
          (r) => r.status,
          () => 'dropped' as const,
        ),
      ),
    );
    expect(performance.now() - t0).toBeGreaterThanOrEqual(390);
    const timeouts = results.filter((r) => r === 'dropped').length;
    expect(timeouts).toBe(srv.stats().injected.timeout);
    expect(timeouts).toBeGreaterThan(10);
    expect(timeouts).toBeLessThan(30);
    expect(results.filter((r) => r === 200).length).toBe(40 - timeouts);
  });

  it('delays responses by the injected latency and adds it up in the counters', async () => {
    srv = await startSandboxServer({
      world,
      injection: { rules: [{ pathPrefix: '/wiki/', latency: { kind: 'fixed', ms: 120 } }] },
    });
    const t0 = performance.now();
    const r = await fetch(`${srv.url}/wiki/${world.entities[0]?.slug}`);
    expect(r.status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(115);
    expect(srv.stats().injected).toMatchObject({ delayed: 1, delayMsTotal: 120, delayMsMax: 120 });
  });

  it('switches injection at run time with setInjection', async () => {
    srv = await startSandboxServer({ world });
    const path = `${srv.url}/wiki/${world.entities[0]?.slug}`;
    expect((await fetch(path)).status).toBe(200);
    srv.setInjection({ rules: [{ faults: { error500: 1 } }] });
    expect((await fetch(path)).status).toBe(500);
  });
});

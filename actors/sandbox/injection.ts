/**
 * Latency and failure injection: per request, the first rule whose path prefix matches decides an added
 * delay (fixed, uniform, or heavy-tailed lognormal/Pareto) and whether the request fails (500, 429 with
 * Retry-After, or a timeout that never answers). Draws come from a seeded stream, a fixed number per
 * request, so a sequential run is reproducible and rates hold under concurrency.
 */
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import { createRng, type Rng } from './rng.ts';

const latencySchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }),
  z.object({ kind: z.literal('fixed'), ms: z.number().min(0) }),
  z.object({ kind: z.literal('uniform'), minMs: z.number().min(0), maxMs: z.number().min(0) }),
  z.object({
    kind: z.literal('lognormal'),
    medianMs: z.number().positive(),
    sigma: z.number().min(0),
    capMs: z.number().positive().optional(),
  }),
  z.object({
    kind: z.literal('pareto'),
    scaleMs: z.number().positive(),
    alpha: z.number().positive(),
    capMs: z.number().positive().optional(),
  }),
]);

const rate = z.number().min(0).max(1);
const ruleSchema = z.object({
  /** Path prefix the rule applies to ('/search', '/wiki/'); omitted: every path. */
  pathPrefix: z.string().startsWith('/').optional(),
  latency: latencySchema.optional(),
  faults: z
    .object({ error500: rate.optional(), rateLimit429: rate.optional(), timeout: rate.optional() })
    .refine(
      (f) => (f.error500 ?? 0) + (f.rateLimit429 ?? 0) + (f.timeout ?? 0) <= 1,
      'fault rates must sum to at most 1',
    )
    .optional(),
  /** A token bucket like an API's quota: over it, requests get 429 with the wait in Retry-After. */
  rateLimit: z
    .object({ perSecond: z.number().positive(), burst: z.number().int().min(1).optional() })
    .optional(),
});

export const injectionSchema = z.object({
  seed: z.number().int().min(0).optional(),
  /** First matching rule applies. */
  rules: z.array(ruleSchema).optional(),
  /** Retry-After (seconds) on an injected 429; default 1. */
  retryAfterS: z.number().int().min(0).optional(),
  /** How long an injected timeout holds the request before dropping the connection; default 60 s. */
  timeoutHoldMs: z.number().int().min(0).optional(),
});

export type LatencySpec = z.infer<typeof latencySchema>;
export type InjectionRule = z.infer<typeof ruleSchema>;
export type InjectionConfig = z.infer<typeof injectionSchema>;
export type Fault = 'error500' | 'rateLimit429' | 'timeout' | 'throttled';

export interface Decision {
  delayMs: number;
  fault: Fault | null;
  /** Seconds to send in Retry-After with a 429. */
  retryAfterS?: number;
}

/** Validates an injection config from outside (CLI file, actor args); throws SANDBOX_BAD_INJECTION. */
export function parseInjection(input: unknown): InjectionConfig {
  const r = injectionSchema.safeParse(input);
  if (!r.success) {
    throw new DrError(
      'SANDBOX_BAD_INJECTION',
      `invalid injection config: ${z.prettifyError(r.error)}; see actors/sandbox/README.md`,
    );
  }
  return r.data;
}

/** One latency draw from two uniforms (u1, u2), so every request consumes the same number of draws. */
export function sampleLatency(spec: LatencySpec, u1: number, u2: number): number {
  switch (spec.kind) {
    case 'none':
      return 0;
    case 'fixed':
      return spec.ms;
    case 'uniform':
      return spec.minMs + u1 * (spec.maxMs - spec.minMs);
    case 'lognormal': {
      const z = Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
      return Math.min(spec.medianMs * Math.exp(spec.sigma * z), spec.capMs ?? Infinity);
    }
    case 'pareto':
      return Math.min(spec.scaleMs / Math.pow(1 - u1, 1 / spec.alpha), spec.capMs ?? Infinity);
  }
}

/** Parses the CLI form: `fixed:MS`, `uniform:MIN:MAX`, `lognormal:MEDIAN:SIGMA[:CAP]`, `pareto:SCALE:ALPHA[:CAP]`. */
export function parseLatencySpec(text: string): LatencySpec {
  const [kind, ...rest] = text.split(':');
  const n = rest.map(Number);
  const spec: Record<string, unknown> = { kind };
  if (kind === 'fixed') spec.ms = n[0];
  else if (kind === 'uniform') Object.assign(spec, { minMs: n[0], maxMs: n[1] });
  else if (kind === 'lognormal')
    Object.assign(spec, { medianMs: n[0], sigma: n[1], ...(n[2] !== undefined ? { capMs: n[2] } : {}) });
  else if (kind === 'pareto')
    Object.assign(spec, { scaleMs: n[0], alpha: n[1], ...(n[2] !== undefined ? { capMs: n[2] } : {}) });
  const r = latencySchema.safeParse(spec);
  if (!r.success) {
    throw new DrError(
      'SANDBOX_BAD_INJECTION',
      `bad latency "${text}": use fixed:MS, uniform:MIN:MAX, lognormal:MEDIAN:SIGMA[:CAP] or pareto:SCALE:ALPHA[:CAP]`,
    );
  }
  return r.data;
}

export class Injector {
  private readonly rng: Rng;
  readonly retryAfterS: number;
  readonly timeoutHoldMs: number;
  private readonly rules: InjectionRule[];
  private readonly buckets = new Map<InjectionRule, { tokens: number; at: number }>();

  constructor(config: InjectionConfig = {}) {
    this.rng = createRng(config.seed ?? 0).fork('injection');
    this.rules = config.rules ?? [];
    this.retryAfterS = config.retryAfterS ?? 1;
    this.timeoutHoldMs = config.timeoutHoldMs ?? 60_000;
  }

  /** `nowMs` drives the rate-limit buckets (a monotonic clock; injectable for tests). */
  decide(path: string, nowMs = performance.now()): Decision {
    const rule = this.rules.find((r) => r.pathPrefix === undefined || path.startsWith(r.pathPrefix));
    if (rule === undefined) return { delayMs: 0, fault: null };
    const u = this.rng.next();
    const delayMs = sampleLatency(rule.latency ?? { kind: 'none' }, this.rng.next(), this.rng.next());
    const wait = this.takeToken(rule, nowMs);
    if (wait > 0) return { delayMs, fault: 'throttled', retryAfterS: Math.max(1, Math.ceil(wait / 1000)) };
    const f = rule.faults ?? {};
    const e500 = f.error500 ?? 0;
    const e429 = e500 + (f.rateLimit429 ?? 0);
    const eTimeout = e429 + (f.timeout ?? 0);
    if (u < e500) return { delayMs, fault: 'error500' };
    if (u < e429) return { delayMs, fault: 'rateLimit429', retryAfterS: this.retryAfterS };
    return { delayMs, fault: u < eTimeout ? 'timeout' : null };
  }

  /** 0 when the rule's bucket had a token (or it has no limit), else the ms until the next token. */
  private takeToken(rule: InjectionRule, nowMs: number): number {
    const limit = rule.rateLimit;
    if (limit === undefined) return 0;
    const burst = limit.burst ?? Math.max(1, Math.ceil(limit.perSecond));
    const b = this.buckets.get(rule) ?? { tokens: burst, at: nowMs };
    b.tokens = Math.min(burst, b.tokens + ((nowMs - b.at) * limit.perSecond) / 1000);
    b.at = nowMs;
    this.buckets.set(rule, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return ((1 - b.tokens) * 1000) / limit.perSecond;
  }
}

/**
 * Next-token choice from a row of logits: greedy, or temperature + nucleus (top-p) sampling driven by a
 * seeded generator, with the chosen token's log-probability. Nucleus selection avoids sorting the whole
 * vocabulary: it lowers a probability threshold until the tokens above it hold `topP` of the mass, then sorts
 * only those, which is exact and cheap for 150k-token vocabularies.
 */

/** A small seeded generator (SplitMix32-style mixing of a Weyl sequence): uniform floats in [0, 1). */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = mix32((Math.trunc(seed) ^ 0x9e3779b9) >>> 0);
  }

  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return mix32(this.state) / 2 ** 32;
  }

  /** Independent stream `index` of `seed` (one per batch row, so a row's samples don't depend on its batch). */
  static stream(seed: number, index: number): SeededRandom {
    return new SeededRandom(mix32(((Math.trunc(seed) >>> 0) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0));
  }
}

function mix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export interface SamplingParams {
  /** 0 means greedy. */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 keeps the whole distribution. */
  topP: number;
}

export interface Choice {
  token: number;
  /** log p(token) under softmax(logits / temperature) (temperature 1 when greedy), before top-p truncation. */
  logprob: number;
}

/** Picks a token from `logits` (one row, length = vocab). `probs` is scratch space of the same length. */
export function chooseToken(
  logits: Float32Array,
  params: SamplingParams,
  rng: SeededRandom,
  probs: Float64Array,
): Choice {
  const n = logits.length;
  const t = params.temperature > 0 ? params.temperature : 1;
  let max = -Infinity;
  let argmax = 0;
  for (let i = 0; i < n; i++) {
    if (logits[i]! > max) {
      max = logits[i]!;
      argmax = i;
    }
  }
  let z = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp((logits[i]! - max) / t);
    probs[i] = e;
    z += e;
  }
  const logZ = Math.log(z);
  const logprobOf = (token: number): number => (logits[token]! - max) / t - logZ;
  if (params.temperature <= 0) return { token: argmax, logprob: logprobOf(argmax) };
  for (let i = 0; i < n; i++) probs[i] = probs[i]! / z;
  const token = params.topP >= 1 ? sampleAll(probs, n, rng) : sampleNucleus(probs, n, params.topP, rng);
  return { token, logprob: logprobOf(token) };
}

function sampleAll(probs: Float64Array, n: number, rng: SeededRandom): number {
  let u = rng.next();
  for (let i = 0; i < n; i++) {
    u -= probs[i]!;
    if (u < 0) return i;
  }
  // Rounding left a sliver of mass: the last token with any probability takes it.
  for (let i = n - 1; i >= 0; i--) if (probs[i]! > 0) return i;
  return 0;
}

function sampleNucleus(probs: Float64Array, n: number, topP: number, rng: SeededRandom): number {
  let threshold = 0;
  for (let i = 0; i < n; i++) threshold = Math.max(threshold, probs[i]!);
  let candidates: number[];
  for (;;) {
    candidates = [];
    let mass = 0;
    for (let i = 0; i < n; i++) {
      if (probs[i]! >= threshold) {
        candidates.push(i);
        mass += probs[i]!;
      }
    }
    if (mass >= topP || threshold === 0) break;
    threshold = threshold > 1e-30 ? threshold / 4 : 0;
  }
  // Highest probability first; ties by token id so the choice is deterministic.
  candidates.sort((a, b) => probs[b]! - probs[a]! || a - b);
  let kept = 0;
  let mass = 0;
  while (kept < candidates.length && (kept === 0 || mass < topP)) mass += probs[candidates[kept++]!]!;
  let u = rng.next() * mass;
  for (let i = 0; i < kept; i++) {
    u -= probs[candidates[i]!]!;
    if (u < 0) return candidates[i]!;
  }
  return candidates[kept - 1]!;
}

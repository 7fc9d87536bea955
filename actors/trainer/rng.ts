/**
 * Seeded randomness whose whole state is a few integers, so a checkpoint can store it and a resumed run
 * draws exactly what the uninterrupted one would have: xoshiro128** for draws, and a question sampler that
 * walks a fresh seeded permutation of the training set every epoch (its state is just epoch and index).
 */
export type RngState = [number, number, number, number];

export class Rng {
  private s: Uint32Array;

  constructor(seed: number | RngState) {
    if (typeof seed === 'number') {
      // splitmix32 expands one seed into four non-zero words
      let x = seed >>> 0;
      const next = (): number => {
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        return (z ^ (z >>> 16)) >>> 0;
      };
      this.s = Uint32Array.from([next(), next(), next(), next()]);
    } else {
      this.s = Uint32Array.from(seed);
    }
  }

  /** Uniform in [0, 1). */
  next(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result / 2 ** 32;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  state(): RngState {
    return [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!];
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export interface SamplerCursor {
  epoch: number;
  index: number;
}

/** Draws questions without replacement, epoch after epoch, each epoch in its own seeded order. */
export class QuestionSampler<T> {
  private order: number[];

  constructor(
    private readonly items: readonly T[],
    private readonly seed: number,
    private cursor: SamplerCursor = { epoch: 0, index: 0 },
  ) {
    this.order = this.permutation(cursor.epoch);
  }

  take(count: number): T[] {
    const out: T[] = [];
    while (out.length < count && this.items.length > 0) {
      if (this.cursor.index >= this.order.length) {
        this.cursor = { epoch: this.cursor.epoch + 1, index: 0 };
        this.order = this.permutation(this.cursor.epoch);
      }
      out.push(this.items[this.order[this.cursor.index++]!]!);
    }
    return out;
  }

  position(): SamplerCursor {
    return { ...this.cursor };
  }

  private permutation(epoch: number): number[] {
    const rng = new Rng((this.seed * 1_000_003 + epoch) >>> 0);
    const p = this.items.map((_, i) => i);
    for (let i = p.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    return p;
  }
}

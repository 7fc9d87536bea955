import { describe, expect, it } from 'vitest';
import { chooseToken, SeededRandom } from './sampling.ts';

const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);

function frequencies(params: { temperature: number; topP: number }, draws: number): number[] {
  const rng = new SeededRandom(42);
  const scratch = new Float64Array(logits.length);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < draws; i++) counts[chooseToken(logits, params, rng, scratch).token]!++;
  return counts.map((c) => c / draws);
}

describe('token choice', () => {
  it('greedy picks the argmax and reports its log-probability', () => {
    const c = chooseToken(logits, { temperature: 0, topP: 1 }, new SeededRandom(1), new Float64Array(4));
    expect(c.token).toBe(0);
    expect(c.logprob).toBeCloseTo(Math.log(0.5), 6);
  });

  it('samples in proportion to the probabilities at temperature 1', () => {
    const f = frequencies({ temperature: 1, topP: 1 }, 20000);
    [0.5, 0.3, 0.15, 0.05].forEach((p, i) => expect(Math.abs(f[i]! - p)).toBeLessThan(0.015));
  });

  it('keeps only the smallest top set reaching top-p, renormalised', () => {
    // 0.5 + 0.3 = 0.8 >= 0.75: tokens 2 and 3 are never drawn; 0 and 1 keep their 5:3 ratio.
    const f = frequencies({ temperature: 1, topP: 0.75 }, 16000);
    expect(f[2]).toBe(0);
    expect(f[3]).toBe(0);
    expect(Math.abs(f[0]! - 0.625)).toBeLessThan(0.015);
  });

  it('reports log-probabilities under the temperature-scaled distribution', () => {
    const rng = new SeededRandom(3);
    const c = chooseToken(logits, { temperature: 2, topP: 1 }, rng, new Float64Array(4));
    const scaled = [0.5, 0.3, 0.15, 0.05].map((p) => Math.sqrt(p));
    const z = scaled.reduce((a, b) => a + b, 0);
    expect(c.logprob).toBeCloseTo(Math.log(scaled[c.token]! / z), 6);
  });

  it('gives independent, reproducible streams per seed and index', () => {
    const draw = (r: SeededRandom) => Array.from({ length: 5 }, () => r.next());
    expect(draw(SeededRandom.stream(7, 0))).toEqual(draw(SeededRandom.stream(7, 0)));
    expect(draw(SeededRandom.stream(7, 0))).not.toEqual(draw(SeededRandom.stream(7, 1)));
    expect(draw(SeededRandom.stream(7, 0))).not.toEqual(draw(SeededRandom.stream(8, 0)));
    for (const u of draw(new SeededRandom(0))) expect(u >= 0 && u < 1).toBe(true);
  });
});

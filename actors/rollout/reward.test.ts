import { describe, expect, it } from 'vitest';
import { formatAndEm, formatAndF1, normalizeAnswerText, scoreSolution, tagsBalanced } from './reward.ts';

// Expected values are derived by hand from DeepResearcher's reward code; F1 values are written as the same
// float operations the original performs (2*(p*r)/(p+r)) so they match it to the last bit.
const f1Of = (p: number, r: number): number => (2 * (p * r)) / (p + r);

describe('formatAndF1 / formatAndEm (DeepResearcher format_and_f1)', () => {
  it('scores an exact well-formed answer 1', () => {
    expect(scoreSolution('<think>capital of France</think>\n<answer>Paris</answer>', 'Paris')).toEqual({
      f1: 1,
      em: 1,
    });
  });

  it('accepts upper-case tags because the whole solution is lowercased first', () => {
    const solution = '<THINK>look it up</THINK><Answer>The Eiffel-Tower!</ANSWER>';
    // "the eiffel tower" vs {eiffel, tower}: common 2, p = 2/3, r = 1
    expect(formatAndF1(solution, 'Eiffel Tower')).toBe(f1Of(2 / 3, 1));
    expect(formatAndF1(solution, 'Eiffel Tower')).toBe(0.8);
    expect(formatAndEm(solution, 'Eiffel Tower')).toBe(0);
  });

  it('replaces only ASCII punctuation; unicode dashes stay inside words', () => {
    // answer words {beyoncé, knowles–carter}; truth {beyoncé, knowles, carter}: p = 1/2, r = 1/3
    const solution = '<answer>Beyoncé Knowles–Carter</answer>';
    expect(formatAndF1(solution, 'Beyoncé Knowles-Carter')).toBe(f1Of(1 / 2, 1 / 3));
    expect(formatAndEm(solution, 'beyoncé knowles–carter')).toBe(1);
  });

  it("splits words on Python's whitespace set, not JavaScript's", () => {
    expect(scoreSolution('<answer>New\u00a0York</answer>', 'new york')).toEqual({ f1: 1, em: 1 });
    expect(scoreSolution('<answer>a\u001cb</answer>', 'a b')).toEqual({ f1: 1, em: 1 });
    // U+FEFF is not whitespace to Python, so it stays glued to the word.
    expect(scoreSolution('<answer>\ufeffparis</answer>', 'paris')).toEqual({ f1: 0, em: 0 });
  });

  it('lowercases with full Unicode case mapping (dotted İ, final sigma)', () => {
    expect(scoreSolution('<answer>İstanbul</answer>', 'istanbul')).toEqual({ f1: 0, em: 0 });
    expect(scoreSolution('<answer>ΟΔΥΣΣΕΥΣ</answer>', 'οδυσσευς')).toEqual({ f1: 1, em: 1 });
  });

  it('scores only the first of several answers', () => {
    const solution = '<think>a</think><answer>London</answer><think>b</think><answer>Paris</answer>';
    expect(scoreSolution(solution, 'Paris')).toEqual({ f1: 0, em: 0 });
  });

  it('passes nested tags the original passes and scores up to the first closing tag', () => {
    expect(scoreSolution('<think><think>x</think></think><answer>paris</answer>', 'paris')).toEqual({
      f1: 1,
      em: 1,
    });
    // first answer text: "a <answer>b" -> "a answer b"; truth {b}: p = 1/3, r = 1
    expect(scoreSolution('<answer>a <answer>b</answer> c</answer>', 'b')).toEqual({
      f1: f1Of(1 / 3, 1),
      em: 0,
    });
  });

  it('gives -1 for unbalanced or mis-ordered tags and for a missing answer', () => {
    expect(scoreSolution('<think>x<answer>y</answer>', 'y')).toEqual({ f1: -1, em: -1 });
    expect(scoreSolution('</think>x<think><answer>y</answer>', 'y')).toEqual({ f1: -1, em: -1 });
    expect(scoreSolution('<think>x</think><tool_call>{"name":"web_search"}', 'y')).toEqual({
      f1: -1,
      em: -1,
    });
    expect(scoreSolution('<think>no answer yet</think>', 'y')).toEqual({ f1: -1, em: -1 });
    expect(scoreSolution('', 'y')).toEqual({ f1: -1, em: -1 });
  });

  it('scores an empty or punctuation-only answer 0, but EM matches an empty alias', () => {
    expect(scoreSolution('<answer></answer>', 'x')).toEqual({ f1: 0, em: 0 });
    expect(scoreSolution('<answer> ?! </answer>', 'x')).toEqual({ f1: 0, em: 0 });
    expect(scoreSolution('<answer></answer>', `${'<|answer_split|>'}x`)).toEqual({ f1: 0, em: 1 });
  });

  it('takes the best alias and compares word sets, not multisets', () => {
    // alias 1: {new, york, city} vs {new, york}: p = 1, r = 2/3; alias 2 {nyc} shares nothing
    expect(formatAndF1('<answer>New York</answer>', 'New York City<|answer_split|>NYC')).toBe(f1Of(1, 2 / 3));
    expect(formatAndEm('<answer>nyc</answer>', 'New York City<|answer_split|>NYC')).toBe(1);
    expect(scoreSolution('<answer>paris paris paris</answer>', 'Paris')).toEqual({ f1: 1, em: 0 });
  });

  it('splits dotted abbreviations in the truth into words', () => {
    expect(scoreSolution('<answer>USA</answer>', 'U.S.A.')).toEqual({ f1: 0, em: 0 });
    expect(scoreSolution('<answer>u.s.a</answer>', 'U.S.A.')).toEqual({ f1: 1, em: 1 });
  });
});

describe('tagsBalanced', () => {
  it('requires every opening tag to be followed by its closing tag', () => {
    expect(tagsBalanced('<tool_call>{}</tool_call><think></think>')).toBe(true);
    expect(tagsBalanced('</answer><answer>x</answer><answer>')).toBe(false);
  });
});

describe('normalizeAnswerText', () => {
  it('turns ASCII punctuation into spaces and collapses whitespace', () => {
    expect(normalizeAnswerText("  O'Neil,\t\n(Jr.)  ")).toBe('O Neil Jr');
  });
});

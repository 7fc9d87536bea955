/**
 * DeepResearcher's verl reward (`format_and_f1`), reproduced to the last digit: the training signal and the
 * paper's F1/EM metric. Semantics follow the original Python, including its quirks:
 * - the whole solution string and the ground truth are lowercased first, so `<THINK>` counts as `<think>`;
 * - the format check only counts and orders `<think>`, `<tool_call>` and `<answer>` tag pairs;
 * - only the first `<answer>...</answer>` is scored;
 * - words are compared as SETS (duplicates don't count), best ground-truth alias wins.
 * Whitespace is Python's `str.isspace` set, not JavaScript's `\s` (they differ on U+001C-001F, U+0085 and
 * U+FEFF), because Python's `re` `\s` and `str.split()` decide what a word is in the original.
 */

/** Aliases in a ground-truth string are joined by this marker (the parquet `reward_model.ground_truth`). */
export const ANSWER_SPLIT = '<|answer_split|>';

/** Reward for a solution whose tags are unbalanced or that has no `<answer>`. */
export const FORMAT_ERROR_SCORE = -1;

export interface Scores {
  f1: number;
  em: number;
}

const CHECKED_TAGS = ['tool_call', 'think', 'answer'] as const;
const ASCII_PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
// eslint-disable-next-line no-control-regex -- U+001C-001F are whitespace to Python and must split words
const PY_WHITESPACE_RUN = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/g;
const FIRST_ANSWER = /<answer>([\s\S]*?)<\/answer>/;

function countOccurrences(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

/** The original's tag check: equal open/close counts, and every open tag followed by a close tag. */
export function tagsBalanced(text: string): boolean {
  for (const tag of CHECKED_TAGS) {
    const open = `<${tag}>`;
    const close = `</${tag}>`;
    if (countOccurrences(text, open) !== countOccurrences(text, close)) return false;
    let last = -1;
    for (;;) {
      const start = text.indexOf(open, last + 1);
      if (start === -1) break;
      const end = text.indexOf(close, start);
      if (end === -1) return false;
      last = end;
    }
  }
  return true;
}

/** ASCII punctuation to spaces, whitespace runs to one space, trimmed. Does not lowercase. */
export function normalizeAnswerText(text: string): string {
  let out = text;
  for (const p of ASCII_PUNCTUATION) out = out.split(p).join(' ');
  return out.replace(PY_WHITESPACE_RUN, ' ').replace(/^ +| +$/g, '');
}

/** The normalized text of the first answer of an already-lowercased, well-formed solution; null if none. */
function firstAnswer(lowered: string): string | null {
  const match = FIRST_ANSWER.exec(lowered);
  return match === null ? null : normalizeAnswerText(match[1] ?? '');
}

function words(normalized: string): Set<string> {
  return new Set(normalized.split(' ').filter((w) => w.length > 0));
}

function prepare(solution: string, groundTruth: string): { answer: string; aliases: string[] } | null {
  const lowered = solution.toLowerCase();
  if (!tagsBalanced(lowered)) return null;
  const answer = firstAnswer(lowered);
  if (answer === null) return null;
  return { answer, aliases: groundTruth.toLowerCase().split(ANSWER_SPLIT).map(normalizeAnswerText) };
}

/** F1 over word sets against the best alias; -1 on a format error or a missing answer. */
export function formatAndF1(solution: string, groundTruth: string): number {
  const prepared = prepare(solution, groundTruth);
  if (prepared === null) return FORMAT_ERROR_SCORE;
  const predicted = words(prepared.answer);
  let best = 0;
  for (const alias of prepared.aliases) {
    const truth = words(alias);
    if (truth.size === 0 || predicted.size === 0) continue;
    let common = 0;
    for (const w of predicted) if (truth.has(w)) common += 1;
    const precision = common / predicted.size;
    const recall = common / truth.size;
    // Same operation order as the original so the float result matches bit for bit.
    if (precision + recall > 0) best = Math.max(best, (2 * (precision * recall)) / (precision + recall));
  }
  return best;
}

/** Exact match of the normalized first answer against any normalized alias; -1 on a format error. */
export function formatAndEm(solution: string, groundTruth: string): number {
  const prepared = prepare(solution, groundTruth);
  if (prepared === null) return FORMAT_ERROR_SCORE;
  return prepared.aliases.includes(prepared.answer) ? 1 : 0;
}

export function scoreSolution(solution: string, groundTruth: string): Scores {
  return { f1: formatAndF1(solution, groundTruth), em: formatAndEm(solution, groundTruth) };
}

/**
 * Model-based evaluation (MBE): an LLM judge, reached through the openai package at any OpenAI-compatible
 * endpoint, decides whether a prediction answers the question given the ground-truth aliases. The judge is
 * asked for JSON but read robustly (JSON anywhere in the reply, field-name variants, a bare verdict word);
 * an unreadable or failed reply is asked again, and after the last attempt the verdict is `null` (unknown)
 * rather than a guess, so a flaky judge never silently moves the score.
 */
import OpenAI from 'openai';
import { isDrError } from '../../config/errors.ts';
import { ANSWER_SPLIT } from './reward.ts';

export interface JudgeOptions {
  baseURL: string;
  model: string;
  apiKey?: string;
  /** Whole attempts (request + parse) before giving up on an item. */
  attempts?: number;
  timeoutMs?: number;
}

export interface JudgeInput {
  question: string;
  /** Aliases joined by `<|answer_split|>`, as in the datasets. */
  groundTruth: string;
  /** The model's answer; empty or undefined when it gave none. */
  prediction: string | undefined;
}

export interface Verdict {
  correct: boolean | null;
  rationale: string;
  attempts: number;
  error?: string;
}

/** Written for this project. */
export function judgePrompt(input: JudgeInput): string {
  const truths = input.groundTruth.split(ANSWER_SPLIT).map((t) => t.trim());
  return [
    'You grade answers to questions. Decide whether the predicted answer is correct.',
    'It is correct when it means the same thing as at least one of the reference answers for this question;',
    'wording, spelling variants, extra detail that does not change the meaning, and missing articles do not',
    'matter. It is incorrect when it names something else, hedges between several candidates, or is empty.',
    '',
    `Question: ${input.question}`,
    `Reference answers: ${JSON.stringify(truths)}`,
    `Predicted answer: ${JSON.stringify(input.prediction ?? '')}`,
    '',
    'Reply with one JSON object and nothing else:',
    '{"rationale": "<one or two sentences>", "judgement": "correct" or "incorrect"}',
  ].join('\n');
}

const VERDICT_KEYS = ['judgement', 'judgment', 'verdict', 'result', 'label'];

function verdictWord(value: unknown): boolean | null {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string') return null;
  const word = value.trim().toLowerCase();
  if (/^(incorrect|wrong|false|no)\b/.test(word)) return false;
  if (/^(correct|right|true|yes)\b/.test(word)) return true;
  return null;
}

/** Reads a verdict from whatever the judge wrote; null when it cannot be told. */
export function parseVerdict(text: string): { correct: boolean; rationale: string } | null {
  const objects = text.match(/\{[\s\S]*?\}/g) ?? [];
  for (const candidate of objects.reverse()) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(candidate);
    } catch {
      continue;
    }
    if (typeof parsed !== 'object' || parsed === null) continue;
    const record = parsed as Record<string, unknown>;
    for (const key of VERDICT_KEYS) {
      const found = Object.keys(record).find((k) => k.trim().toLowerCase() === key);
      const correct = found === undefined ? null : verdictWord(record[found]);
      if (correct !== null) {
        const rationale = typeof record.rationale === 'string' ? record.rationale : '';
        return { correct, rationale };
      }
    }
  }
  const words = text.toLowerCase().match(/\b(incorrect|correct)\b/g) ?? [];
  const distinct = new Set(words);
  if (distinct.size === 1) return { correct: distinct.has('correct'), rationale: text.trim() };
  return null;
}

export class Judge {
  private readonly client: OpenAI;

  constructor(private readonly options: JudgeOptions) {
    this.client = new OpenAI({
      baseURL: options.baseURL,
      apiKey: options.apiKey ?? 'not-needed',
      maxRetries: 2,
      timeout: options.timeoutMs ?? 120_000,
    });
  }

  async judge(input: JudgeInput): Promise<Verdict> {
    if (input.prediction === undefined || input.prediction.trim() === '') {
      return { correct: false, rationale: 'no answer was given', attempts: 0 };
    }
    const attempts = this.options.attempts ?? 3;
    let lastError = '';
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      try {
        const completion = await this.client.chat.completions.create({
          model: this.options.model,
          messages: [{ role: 'user', content: judgePrompt(input) }],
          temperature: 0,
          max_tokens: 512,
        });
        const text = completion.choices[0]?.message.content ?? '';
        const verdict = parseVerdict(text);
        if (verdict !== null) return { ...verdict, attempts: attempt };
        lastError = `unreadable verdict: ${text.slice(0, 200)}`;
      } catch (err) {
        lastError = isDrError(err) ? err.code : String(err);
      }
    }
    return { correct: null, rationale: '', attempts, error: lastError };
  }
}

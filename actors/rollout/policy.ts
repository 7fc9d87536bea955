/**
 * The policy behind a rollout: one interface for every backend. `chat` backends see the message list (any
 * OpenAI-compatible chat server or hosted API); `tokens` backends see the rendered prompt with its token ids
 * and return token ids with per-token logprobs (raw completions over the Qwen2.5 chat template, and the
 * embedded ONNX policy, which plugs in here).
 */
import type { Message } from './prompt.ts';

export type PolicyMode = 'chat' | 'tokens';

export interface PolicyInput {
  messages: readonly Message[];
  /** The rendered conversation ending in the generation prompt; given to `tokens` backends. */
  prompt?: { text: string; tokenIds?: readonly number[] };
}

export interface SamplingOptions {
  maxTokens: number;
  temperature: number;
  topP: number;
  /** Generation stops after any of these (kept in the returned text). */
  stop: readonly string[];
  signal?: AbortSignal;
}

export interface Generation {
  /** The turn text, including the stop string that ended it. */
  text: string;
  /** Token ids of `text`, when the backend reports them. */
  tokenIds?: number[];
  /** Log-probability of each token in `tokenIds` under the policy that sampled it. */
  logprobs?: number[];
  finishReason: 'stop' | 'length';
  /** Version of the weights that produced this turn, when the backend reports it (for off-policy
   * bookkeeping in training); otherwise the batch's version from the rollout settings applies. */
  weightVersion?: number;
}

export interface Policy {
  readonly mode: PolicyMode;
  generate(input: PolicyInput, sampling: SamplingOptions): Promise<Generation>;
}

/** Renders a conversation into prompt text the way the model was trained (Qwen2.5's chat template);
 * runtime/model's ChatTemplate satisfies it. */
export interface PromptRenderer {
  render(
    messages: readonly Message[],
    options?: { tools?: readonly unknown[]; addGenerationPrompt?: boolean },
  ): string;
}

/** runtime/model's TextTokenizer satisfies it. */
export interface TextEncoder {
  encode(text: string): number[];
}

/** The default stop strings: a turn ends after its tool call or its answer. */
export const TURN_STOPS = ['</tool_call>', '</answer>'] as const;

/** Servers that drop the stop string from the output: put back the closing tag of an open tool call or
 * answer, so the recorded turn is what the model really committed to. Returns the restored suffix. */
export function restoreStop(text: string): string {
  const lower = text.toLowerCase();
  for (const tag of ['tool_call', 'answer']) {
    if (lower.lastIndexOf(`<${tag}>`) > lower.lastIndexOf(`</${tag}>`)) return `</${tag}>`;
  }
  return '';
}

/** An error and its causes in one line ("Connection error. <- fetch failed <- read ECONNRESET"), so a
 * transport failure says what actually happened. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth += 1) {
    parts.push(current instanceof Error ? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(' <- ');
}

/**
 * A policy served by an OpenAI-compatible raw-completions endpoint (vLLM, SGLang) over the rendered Qwen2.5
 * chat template: the prompt goes out as token ids (so the tokens trained on are exactly the tokens sampled,
 * no re-tokenization drift) and the sampled token ids and per-token logprobs come back. Uses vLLM's
 * `return_tokens_as_token_ids` and `include_stop_str_in_output` extensions, and records the weight version
 * the engine reports with each response.
 */
import OpenAI from 'openai';
import type { CompletionCreateParamsNonStreaming } from 'openai/resources/completions';
import { DrError } from '../../config/errors.ts';
import {
  describeError,
  restoreStop,
  type Generation,
  type Policy,
  type PolicyInput,
  type SamplingOptions,
} from './policy.ts';

export interface CompletionPolicyOptions {
  baseURL: string;
  model: string;
  apiKey?: string;
  maxRetries?: number;
  timeoutMs?: number;
  weightVersion?: () => number;
}

const TOKEN_ID = /^token_id:(\d+)$/;
const FINGERPRINT_VERSION = /^dr-weights-v(\d+)$/;

/** The weight version an engine stamps on a response: SGLang's `metadata.weight_version` (a string), or the
 * project's policy server's `system_fingerprint: dr-weights-v<N>`. */
function reportedVersion(completion: object): number | undefined {
  const c = completion as { metadata?: { weight_version?: unknown }; system_fingerprint?: unknown };
  const v = c.metadata?.weight_version;
  if ((typeof v === 'string' || typeof v === 'number') && /^\d+$/.test(String(v))) return Number(v);
  const f = typeof c.system_fingerprint === 'string' ? FINGERPRINT_VERSION.exec(c.system_fingerprint) : null;
  return f === null ? undefined : Number(f[1]);
}

export class CompletionPolicy implements Policy {
  readonly mode = 'tokens' as const;
  private readonly client: OpenAI;

  constructor(private readonly options: CompletionPolicyOptions) {
    this.client = new OpenAI({
      baseURL: options.baseURL,
      apiKey: options.apiKey ?? 'not-needed',
      maxRetries: options.maxRetries ?? 3,
      timeout: options.timeoutMs ?? 600_000,
    });
  }

  async generate(input: PolicyInput, sampling: SamplingOptions): Promise<Generation> {
    const prompt = input.prompt;
    if (prompt === undefined) {
      throw new DrError('POLICY_NO_PROMPT', 'a completions policy needs the rendered prompt (tokens mode)');
    }
    const params: CompletionCreateParamsNonStreaming & Record<string, unknown> = {
      model: this.options.model,
      prompt: prompt.tokenIds === undefined ? prompt.text : [...prompt.tokenIds],
      max_tokens: sampling.maxTokens,
      temperature: sampling.temperature,
      top_p: sampling.topP,
      stop: [...sampling.stop],
      logprobs: 0,
      include_stop_str_in_output: true,
      return_tokens_as_token_ids: true,
      skip_special_tokens: false,
    };
    let completion;
    try {
      completion = await this.client.completions.create(params, { signal: sampling.signal });
    } catch (cause) {
      throw new DrError(
        'POLICY_REQUEST_FAILED',
        `completions policy at ${this.options.baseURL} failed: ${describeError(cause)}`,
        {
          cause,
        },
      );
    }
    const choice = completion.choices[0];
    if (choice === undefined) {
      throw new DrError(
        'POLICY_BAD_RESPONSE',
        `completions policy at ${this.options.baseURL} returned no choices`,
      );
    }
    const version = reportedVersion(completion) ?? this.options.weightVersion?.();
    const generation: Generation = {
      text: choice.text,
      finishReason: choice.finish_reason === 'length' ? 'length' : 'stop',
      ...(version === undefined ? {} : { weightVersion: version }),
    };
    const tokens = choice.logprobs?.tokens;
    const logprobs = choice.logprobs?.token_logprobs;
    const ids = tokens?.map((t) => TOKEN_ID.exec(t)?.[1]);
    // Token ids and logprobs are kept only when the server gave both for every token; a stop string it
    // dropped despite `include_stop_str_in_output` is restored as text and then no ids are claimed.
    const restored = restoreStop(choice.text);
    if (
      restored === '' &&
      ids !== undefined &&
      logprobs !== undefined &&
      ids.every((id) => id !== undefined)
    ) {
      if (logprobs.length === ids.length && logprobs.every((lp) => typeof lp === 'number')) {
        generation.tokenIds = ids.map(Number);
        generation.logprobs = logprobs;
      }
    }
    generation.text += restored;
    return generation;
  }
}

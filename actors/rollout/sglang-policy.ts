/**
 * A policy served by SGLang's native `POST /generate`: the prompt goes out as `input_ids`, and the sampled
 * `output_ids` with their logprobs (`meta_info.output_token_logprobs`, `return_logprob: true`) come back,
 * so training sees exactly the tokens the engine sampled (SGLang's OpenAI completions endpoint returns
 * tokens as text only). Stop strings stay in the output (`no_stop_trim`), and the weight version the engine
 * reports (`meta_info.weight_version`) is recorded per turn.
 */
import axios, { type AxiosInstance } from 'axios';
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import {
  describeError,
  type Generation,
  type Policy,
  type PolicyInput,
  type SamplingOptions,
} from './policy.ts';

export interface SglangPolicyOptions {
  /** The engine's base URL, with or without the OpenAI `/v1` suffix. */
  baseURL: string;
  apiKey?: string;
  timeoutMs?: number;
  maxRetries?: number;
  weightVersion?: () => number;
}

const reply = z.looseObject({
  text: z.string(),
  output_ids: z.array(z.number().int().nonnegative()).optional(),
  meta_info: z.looseObject({
    /** [logprob, token id, token text or null] per generated token. */
    output_token_logprobs: z
      .array(z.tuple([z.number().nullable(), z.number().int(), z.unknown()]).rest(z.unknown()))
      .optional(),
    finish_reason: z.looseObject({ type: z.string() }).nullish(),
    weight_version: z.union([z.string(), z.number()]).nullish(),
  }),
});

export class SglangPolicy implements Policy {
  readonly mode = 'tokens' as const;
  private readonly http: AxiosInstance;
  private readonly url: string;

  constructor(private readonly options: SglangPolicyOptions) {
    this.url = `${options.baseURL.replace(/\/+$/, '').replace(/\/v1$/, '')}/generate`;
    this.http = axios.create({
      timeout: options.timeoutMs ?? 600_000,
      headers: options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` },
    });
  }

  async generate(input: PolicyInput, sampling: SamplingOptions): Promise<Generation> {
    const prompt = input.prompt;
    if (prompt === undefined)
      throw new DrError('POLICY_NO_PROMPT', 'an SGLang policy needs the rendered prompt (tokens mode)');
    const body = {
      ...(prompt.tokenIds === undefined ? { text: prompt.text } : { input_ids: [...prompt.tokenIds] }),
      sampling_params: {
        max_new_tokens: sampling.maxTokens,
        temperature: sampling.temperature,
        top_p: sampling.topP,
        stop: [...sampling.stop],
        no_stop_trim: true,
        skip_special_tokens: false,
      },
      return_logprob: true,
    };
    const data = await this.post(body, sampling.signal);
    const parsed = reply.safeParse(data);
    if (!parsed.success)
      throw new DrError(
        'POLICY_BAD_RESPONSE',
        `SGLang at ${this.url} answered something that is not a /generate reply: ${parsed.error.issues[0]?.message ?? ''}`,
      );
    const { text, output_ids: ids, meta_info: meta } = parsed.data;
    const reported = meta.weight_version;
    const version =
      reported != null && /^\d+$/.test(String(reported)) ? Number(reported) : this.options.weightVersion?.();
    const generation: Generation = {
      text,
      finishReason: meta.finish_reason?.type === 'length' ? 'length' : 'stop',
      ...(version === undefined ? {} : { weightVersion: version }),
    };
    const logprobs = meta.output_token_logprobs;
    // Ids and logprobs are kept only when they agree token for token.
    if (
      ids !== undefined &&
      logprobs !== undefined &&
      logprobs.length === ids.length &&
      logprobs.every((l, i) => l[1] === ids[i] && typeof l[0] === 'number')
    ) {
      generation.tokenIds = ids;
      generation.logprobs = logprobs.map((l) => l[0] as number);
    }
    return generation;
  }

  private async post(body: unknown, signal: AbortSignal | undefined): Promise<unknown> {
    const attempts = 1 + (this.options.maxRetries ?? 3);
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      try {
        return (
          await this.http.post<unknown>(this.url, body, { ...(signal === undefined ? {} : { signal }) })
        ).data;
      } catch (cause) {
        last = cause;
        const status = axios.isAxiosError(cause) ? cause.response?.status : undefined;
        if (signal?.aborted === true || (status !== undefined && status < 500 && status !== 429)) break;
        await new Promise((r) => setTimeout(r, 250 * 2 ** i));
      }
    }
    throw new DrError(
      'POLICY_REQUEST_FAILED',
      `SGLang policy at ${this.url} failed: ${describeError(last)}`,
      {
        cause: last,
      },
    );
  }
}

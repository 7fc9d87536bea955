/**
 * A policy the cluster serves (a PolicyActor, actors/policy), asked over the cluster transport instead of
 * HTTP. It is a `tokens` policy: it sends the rendered prompt (its token ids when the trajectory has them,
 * otherwise its text, which the PolicyActor encodes with the served model's own tokenizer) and gets back the
 * sampled token ids and their logprobs.
 */
import { DrError } from '../../config/errors.ts';
import type { AskOptions } from '../../runtime/actor.ts';
import { POLICY_PROTOCOL_VERSION, type PolicyGenerateRequest, type PolicyReply } from '../policy/protocol.ts';
import type { Generation, Policy, PolicyInput, SamplingOptions } from './policy.ts';

export type Ask = (target: string, msg: unknown, options?: AskOptions) => Promise<unknown>;

export interface ServedPolicyOptions {
  actor: string;
  /** A long generation on a busy CPU takes minutes. */
  timeoutMs?: number;
}

export class ServedPolicy implements Policy {
  readonly mode = 'tokens' as const;

  constructor(
    private readonly ask: Ask,
    private readonly options: ServedPolicyOptions,
  ) {}

  async generate(input: PolicyInput, sampling: SamplingOptions): Promise<Generation> {
    const prompt = input.prompt;
    if (prompt === undefined)
      throw new DrError('POLICY_NO_PROMPT', 'a served policy needs the rendered prompt (tokens mode)');
    const request: PolicyGenerateRequest = {
      v: POLICY_PROTOCOL_VERSION,
      type: 'policy.generate',
      prompt: prompt.tokenIds === undefined ? prompt.text : [...prompt.tokenIds],
      maxTokens: sampling.maxTokens,
      temperature: sampling.temperature,
      topP: sampling.topP,
      stop: [...sampling.stop],
    };
    // The ask cannot be taken back once sent; a cancelled trajectory just stops waiting for it.
    const reply = (await abortable(
      this.ask(this.options.actor, request, { timeoutMs: this.options.timeoutMs ?? 600_000 }),
      sampling.signal,
    )) as PolicyReply;
    if (reply.type === 'policy.error') throw new DrError(reply.error.code, reply.error.message);
    if (reply.type !== 'policy.generate.reply')
      throw new DrError('POLICY_BAD_RESPONSE', `${this.options.actor} answered ${String(reply.type)}`);
    return {
      text: reply.text,
      tokenIds: reply.tokenIds,
      logprobs: reply.logprobs,
      finishReason: reply.finishReason,
      weightVersion: reply.weightVersion,
    };
  }
}

function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void =>
      reject(new DrError('POLICY_CANCELLED', 'the trajectory was cancelled', { cause: signal.reason }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

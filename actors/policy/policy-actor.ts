/**
 * The PolicyActor kind: one checkpoint the cluster serves (`policy/<name>`, spawned by actors/services from
 * the cluster file's `policies`). It loads the model once and answers `policy.generate` asks; concurrent
 * asks with the same sampling settings run together as one batch (runtime/model/policy.ts), so many
 * trajectories share every forward pass. The ONNX sessions run on a worker thread, leaving the node's event
 * loop, and with it its heartbeats, free.
 */
import { z } from 'zod';
import { isDrError } from '../../config/errors.ts';
import type { Actor, ActorFactory } from '../../runtime/actor.ts';
import { EMBEDDED_DIR } from '../../runtime/model/embedded.ts';
import { loadPolicy } from '../../runtime/model/policy.ts';
import {
  POLICY_PROTOCOL_VERSION,
  policyArgsSchema,
  policyMessageSchema,
  type PolicyArgs,
  type PolicyErrorReply,
  type PolicyReply,
} from './protocol.ts';

/** Asks served at once: each waits for its batch, none holds the CPU itself. */
const MAX_CONCURRENCY = 4096;

function refusal(code: string, message: string): PolicyErrorReply {
  return { v: POLICY_PROTOCOL_VERSION, type: 'policy.error', error: { code, message } };
}

export const policyActor: ActorFactory<PolicyArgs> = async (rawArgs, ctx): Promise<Actor> => {
  const args = policyArgsSchema.parse(rawArgs);
  const dir = args.checkpoint === 'embedded' ? EMBEDDED_DIR : args.checkpoint;
  const policy = await loadPolicy(dir, {
    provider: args.provider,
    maxBatch: args.maxBatch,
    thread: 'worker',
    log: ctx.log,
  });
  const vocabSize = policy.config.vocabSize;
  ctx.log.info({ actor: ctx.self.name, checkpoint: dir, provider: args.provider }, 'policy serving');

  return {
    maxConcurrency: MAX_CONCURRENCY,
    async receive(raw): Promise<PolicyReply> {
      const parsed = policyMessageSchema.safeParse(raw);
      if (!parsed.success)
        return refusal('POLICY_BAD_REQUEST', `malformed policy message: ${z.prettifyError(parsed.error)}`);
      const msg = parsed.data;
      if (msg.type === 'policy.info')
        return {
          v: POLICY_PROTOCOL_VERSION,
          type: 'policy.info.reply',
          model: args.name,
          vocabSize,
          weightVersion: policy.weightVersion,
        };
      const ids = typeof msg.prompt === 'string' ? policy.tokenizer.encode(msg.prompt) : msg.prompt;
      if (ids.some((id) => id >= vocabSize))
        return refusal('POLICY_BAD_REQUEST', `prompt token ids must be below ${vocabSize}`);
      try {
        const out = await policy.generateOne(ids, {
          maxNewTokens: msg.maxTokens,
          temperature: msg.temperature,
          topP: msg.topP,
          stop: msg.stop,
          ...(msg.seed === undefined ? {} : { seed: msg.seed }),
        });
        return {
          v: POLICY_PROTOCOL_VERSION,
          type: 'policy.generate.reply',
          text: out.text,
          tokenIds: out.tokenIds,
          logprobs: out.logprobs,
          finishReason: out.finishReason,
          weightVersion: out.weightVersion,
        };
      } catch (err) {
        return isDrError(err)
          ? refusal(err.code, err.message)
          : refusal('POLICY_GENERATION_FAILED', `generation failed: ${String(err)}`);
      }
    },
    async stop(): Promise<void> {
      await policy.release();
    },
  };
};

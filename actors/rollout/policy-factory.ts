/**
 * Builds the policy a job names. A `completions` policy renders prompts with its checkpoint's chat template
 * and encodes the observations with its tokenizer (`tokenizerDir`, the vendored Qwen2.5 one by default), so
 * its trajectories carry token ids. A `served`
 * policy is a PolicyActor of this cluster, reached with the caller's `ask`.
 */
import { DrError } from '../../config/errors.ts';
import { ChatPolicy } from './chat-policy.ts';
import { CompletionPolicy } from './completion-policy.ts';
import type { Policy, PromptRenderer, TextEncoder } from './policy.ts';
import type { EndpointPolicyConfig, PolicyConfig } from './protocol.ts';
import { ServedPolicy, type Ask } from './served-policy.ts';
import { SglangPolicy } from './sglang-policy.ts';
import { rendererOf } from './template-renderer.ts';

export interface BuiltPolicy {
  policy: Policy;
  encoder?: TextEncoder;
  /** How its prompts are rendered (default ChatML). */
  renderer?: PromptRenderer;
}

function apiKey(config: EndpointPolicyConfig): string | undefined {
  if (config.apiKeyEnv === undefined) return undefined;
  const key = process.env[config.apiKeyEnv];
  if (key === undefined || key === '') {
    throw new DrError(
      'ROLLOUT_POLICY_KEY_MISSING',
      `the policy's API key variable ${config.apiKeyEnv} is not set on this node; export it before starting the node`,
    );
  }
  return key;
}

export async function buildPolicy(config: PolicyConfig, ask: Ask): Promise<BuiltPolicy> {
  if (config.kind === 'served') {
    return {
      policy: new ServedPolicy(ask, {
        actor: config.actor,
        ...(config.timeoutMs === undefined ? {} : { timeoutMs: config.timeoutMs }),
      }),
    };
  }
  const key = apiKey(config);
  const common = {
    baseURL: config.baseURL,
    model: config.model,
    ...(key === undefined ? {} : { apiKey: key }),
    ...(config.timeoutMs === undefined ? {} : { timeoutMs: config.timeoutMs }),
    ...(config.maxRetries === undefined ? {} : { maxRetries: config.maxRetries }),
    ...(config.weightVersion === undefined ? {} : { weightVersion: () => config.weightVersion as number }),
  };
  if (config.kind === 'chat') {
    return {
      policy: new ChatPolicy({ ...common, ...(config.tools === undefined ? {} : { tools: config.tools }) }),
    };
  }
  const { loadTokenizer } = await import('../../runtime/model/tokenizer.ts');
  const tokenizer = await loadTokenizer(config.tokenizerDir);
  const policy = config.kind === 'sglang' ? new SglangPolicy(common) : new CompletionPolicy(common);
  return { policy, encoder: tokenizer, renderer: rendererOf(tokenizer) };
}

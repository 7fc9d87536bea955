/**
 * Builds the policy a job names. A `completions` policy renders Qwen2.5's chat format and encodes the
 * observations with the Qwen2.5 tokenizer from runtime/model, so its trajectories carry token ids. A `served`
 * policy is a PolicyActor of this cluster, reached with the caller's `ask`.
 */
import { DrError } from '../../config/errors.ts';
import { ChatPolicy } from './chat-policy.ts';
import { CompletionPolicy } from './completion-policy.ts';
import type { Policy, TextEncoder } from './policy.ts';
import type { EndpointPolicyConfig, PolicyConfig } from './protocol.ts';
import { ServedPolicy, type Ask } from './served-policy.ts';

export interface BuiltPolicy {
  policy: Policy;
  encoder?: TextEncoder;
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
    weightVersion: () => config.weightVersion ?? 0,
  };
  if (config.kind === 'chat') {
    return {
      policy: new ChatPolicy({ ...common, ...(config.tools === undefined ? {} : { tools: config.tools }) }),
    };
  }
  const { loadTokenizer } = await import('../../runtime/model/tokenizer.ts');
  return { policy: new CompletionPolicy(common), encoder: await loadTokenizer() };
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActorFactory, ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import { ServedPolicy } from '../rollout/served-policy.ts';
import { policyActor } from './policy-actor.ts';
import { POLICY_PROTOCOL_VERSION, policyActorName, type PolicyReply } from './protocol.ts';

const NAME = policyActorName('embedded');
const SAMPLING = { maxTokens: 12, temperature: 0, topP: 1, stop: ['</answer>'] };
const PROMPT = '<|im_start|>user\nWho wrote it?<|im_end|>\n<|im_start|>assistant\n';

let system: ActorSystem;
beforeAll(async () => {
  system = createActorSystem({ kinds: new Map<string, ActorFactory<never>>([['policy', policyActor]]) });
  await system.spawn({ kind: 'policy', name: NAME, args: { name: 'embedded', checkpoint: 'embedded' } });
}, 120_000);
afterAll(async () => {
  await system.stop();
});

describe('a served policy', () => {
  it('generates over the cluster transport with token ids and a logprob for each', async () => {
    const policy = new ServedPolicy((t, m, o) => system.ask(t, m, o), { actor: NAME });

    const out = await policy.generate({ messages: [], prompt: { text: PROMPT } }, SAMPLING);

    expect(out.tokenIds?.length).toBeGreaterThan(0);
    expect(out.logprobs).toHaveLength(out.tokenIds?.length ?? -1);
    for (const lp of out.logprobs ?? []) expect(lp).toBeLessThanOrEqual(0);
    expect(out.text.length).toBeGreaterThan(0);
  });

  it('reports its model and stamps each generation with the weight version it serves', async () => {
    const policy = new ServedPolicy((t, m, o) => system.ask(t, m, o), { actor: NAME });

    const info = await system.ask<PolicyReply>(NAME, { v: POLICY_PROTOCOL_VERSION, type: 'policy.info' });
    const out = await policy.generate({ messages: [], prompt: { text: PROMPT } }, SAMPLING);

    expect(info).toMatchObject({ type: 'policy.info.reply', model: 'embedded' });
    if (info.type !== 'policy.info.reply') return;
    expect(info.vocabSize).toBeGreaterThan(0);
    expect(out.weightVersion).toBe(info.weightVersion);
  });

  it('refuses a malformed request with a reply and keeps serving', async () => {
    const bad = await system.ask<PolicyReply>(NAME, { v: POLICY_PROTOCOL_VERSION, type: 'policy.generate' });
    const outOfVocab = await system.ask<PolicyReply>(NAME, {
      v: POLICY_PROTOCOL_VERSION,
      type: 'policy.generate',
      prompt: [10_000_000],
      maxTokens: 1,
      temperature: 0,
      topP: 1,
      stop: [],
    });

    expect(bad).toMatchObject({ type: 'policy.error', error: { code: 'POLICY_BAD_REQUEST' } });
    expect(outOfVocab).toMatchObject({ type: 'policy.error', error: { code: 'POLICY_BAD_REQUEST' } });
    const policy = new ServedPolicy((t, m, o) => system.ask(t, m, o), { actor: NAME });
    await expect(
      policy.generate({ messages: [], prompt: { text: PROMPT } }, SAMPLING),
    ).resolves.toBeDefined();
  });

  it('turns a refusal into a typed error for the rollout', async () => {
    const policy = new ServedPolicy((t, m, o) => system.ask(t, m, o), { actor: NAME });

    await expect(
      policy.generate({ messages: [], prompt: { text: PROMPT } }, { ...SAMPLING, maxTokens: 0 }),
    ).rejects.toMatchObject({ code: 'POLICY_BAD_REQUEST' });
  });
});

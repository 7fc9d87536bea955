import { afterEach, describe, expect, it } from 'vitest';
import type { ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import {
  sandboxRequest,
  type SandboxErrorReply,
  type SandboxInfoReply,
  type SandboxQuestionsReply,
  type SandboxStatsReply,
} from './protocol.ts';
import { sandboxActor } from './sandbox-actor.ts';

let system: ActorSystem | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

async function spawnSandbox(args: unknown): Promise<ActorSystem> {
  system = createActorSystem({ kinds: new Map([['sandbox', sandboxActor]]) });
  await system.spawn({ kind: 'sandbox', name: 'sandbox', args });
  return system;
}

describe('SandboxActor', () => {
  it('serves the sandbox web it owns and reports its URLs, questions and counters', async () => {
    const sys = await spawnSandbox({ seed: 3, size: 80 });
    const info = await sys.ask<SandboxInfoReply>('sandbox', sandboxRequest('sandbox.info', {}));
    expect(info.type).toBe('sandbox.info.reply');
    const r = await fetch(info.searchUrl, {
      method: 'POST',
      headers: { 'X-API-KEY': info.apiKey },
      body: JSON.stringify({ q: 'river' }),
    });
    expect(r.status).toBe(200);
    const q = await sys.ask<SandboxQuestionsReply>(
      'sandbox',
      sandboxRequest('sandbox.questions', { split: 'dev', limit: 3 }),
    );
    expect(q.rows.length).toBeLessThanOrEqual(3);
    expect(q.total).toBe(info.questions.dev);
    expect(q.rows.every((row) => row.extra_info.split === 'dev')).toBe(true);
    const s = await sys.ask<SandboxStatsReply>('sandbox', sandboxRequest('sandbox.stats', { reset: true }));
    expect(s.stats.byRoute.serper).toBe(1);
    const after = await sys.ask<SandboxStatsReply>('sandbox', sandboxRequest('sandbox.stats', {}));
    expect(after.stats.requests).toBe(0);
  });

  it('changes injection on request', async () => {
    const sys = await spawnSandbox({ seed: 3, size: 40 });
    const info = await sys.ask<SandboxInfoReply>('sandbox', sandboxRequest('sandbox.info', {}));
    await sys.ask(
      'sandbox',
      sandboxRequest('sandbox.set_injection', {
        injection: { rules: [{ pathPrefix: '/wiki/', faults: { error500: 1 } }] },
      }),
    );
    expect((await fetch(`${info.url}/wiki/Anything`)).status).toBe(500);
  });

  it('answers a malformed message with a typed error reply and keeps serving', async () => {
    const sys = await spawnSandbox({ seed: 3, size: 40 });
    const bad = await sys.ask<SandboxErrorReply>('sandbox', {
      v: 1,
      type: 'sandbox.questions',
      split: 'nope',
    });
    expect(bad).toMatchObject({ type: 'sandbox.error', error: { code: 'SANDBOX_BAD_REQUEST' } });
    const info = await sys.ask<SandboxInfoReply>('sandbox', sandboxRequest('sandbox.info', {}));
    expect((await fetch(info.url + '/')).status).toBe(200);
  });

  it('closes its server when it stops', async () => {
    const sys = await spawnSandbox({ seed: 3, size: 40 });
    const info = await sys.ask<SandboxInfoReply>('sandbox', sandboxRequest('sandbox.info', {}));
    await sys.stopActor('sandbox');
    await expect(fetch(info.url + '/')).rejects.toThrow();
  });

  it('refuses to start with invalid args', async () => {
    await expect(spawnSandbox({ seed: -4 })).rejects.toMatchObject({
      code: 'ACTOR_SPAWN_FAILED',
      message: expect.stringContaining('invalid sandbox actor args'),
    });
  });
});

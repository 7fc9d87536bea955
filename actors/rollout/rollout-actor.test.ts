import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { Actor, ActorFactory, ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import type { BrowseRequest, BrowseReply } from '../browse/protocol.ts';
import type { WebSearchReply, WebSearchRequest } from '../search/protocol.ts';
import { startOpenAITestServer, type OpenAITestServer, type ScriptedRequest } from './openai-test-server.ts';
import type { RolloutDone, RolloutFailed, RolloutStart } from './protocol.ts';
import type { Generation, Policy } from './policy.ts';
import { createRolloutActor, rolloutActor } from './rollout-actor.ts';

// Tool actors speaking the search/browse protocols over a two-page web, so the rollout's asks, shard
// routing and per-trajectory browse memory are exercised through the actor runtime.
const searchKind: ActorFactory = (): Actor => ({
  receive: (msg) => {
    const req = msg as WebSearchRequest;
    const reply: WebSearchReply = {
      v: 1,
      type: 'web_search.reply',
      results: req.queries.map((query) => ({
        query,
        cached: false,
        hits: [{ title: 'Tower Alpha', url: 'http://web.test/alpha', snippet: 'the tallest tower' }],
      })),
    };
    return reply;
  },
});

const browsed: BrowseRequest[] = [];
const browseKind: ActorFactory = (): Actor => {
  const seen = new Set<string>();
  return {
    receive: (msg) => {
      const req = msg as BrowseRequest;
      if (req.type !== 'browse_webpage') return { v: 1, type: 'browse.forget.reply', forgotten: true };
      browsed.push(req);
      const reply: BrowseReply = {
        v: 1,
        type: 'browse_webpage.reply',
        results: req.urls.map((url) => {
          const key = `${req.trajectoryId} ${url}`;
          const fresh = !seen.has(key);
          seen.add(key);
          return {
            url,
            status: 'ok',
            information: fresh ? 'Tower Alpha is 828 m tall.' : '',
            pagesRead: 1,
            totalPages: 1,
          };
        }),
      };
      return reply;
    },
  };
};

const received: Array<RolloutDone | RolloutFailed> = [];
const collectorKind: ActorFactory = (): Actor => ({
  receive: (msg) => {
    received.push(msg as RolloutDone | RolloutFailed);
  },
});

function turnOf(req: ScriptedRequest): number {
  return (req.messages ?? []).filter((m) => m.content.startsWith('<tool_response>')).length;
}

const SCRIPT = [
  '<think>search</think><tool_call>{"name": "web_search", "arguments": {"query": ["tallest tower"]}}</tool_call>',
  '<think>read</think><tool_call>{"name": "browse_webpage", "arguments": {"url_list": ["http://web.test/alpha"]}}</tool_call>',
  '<think>done</think><answer>Tower Alpha</answer>',
];

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

async function waitFor(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('RolloutActor', () => {
  let system: ActorSystem | undefined;
  let server: OpenAITestServer | undefined;
  afterEach(async () => {
    await system?.stop();
    await server?.close();
    received.length = 0;
    browsed.length = 0;
  });

  function start(units: number, n: number, extra: Partial<RolloutStart> = {}): RolloutStart {
    return {
      v: 1,
      type: 'rollout.start',
      jobId: 'job-1',
      units: Array.from({ length: units * n }, (_, i) => ({
        questionId: `q${Math.floor(i / n)}`,
        question: 'What is the tallest tower?',
        groundTruth: 'Tower Alpha',
        sample: i % n,
      })),
      settings: {
        maxTurns: 10,
        maxTokensPerTurn: 256,
        temperature: 1,
        topP: 1,
        date: '2026-11-25T00:00:00.000Z',
      },
      policy: { kind: 'chat', baseURL: server?.baseURL ?? 'http://127.0.0.1:1/v1', model: 'policy' },
      schedule: 'async',
      replyTo: 'collector',
      ...extra,
    };
  }

  it('runs n rollouts per question through the tool actors and reports each trajectory once', async () => {
    server = await startOpenAITestServer({ reply: (req) => SCRIPT[turnOf(req)] ?? SCRIPT[2]! });
    system = createActorSystem({
      kinds: new Map<string, ActorFactory<never>>([
        ['rollout', rolloutActor],
        ['search', searchKind],
        ['browse', browseKind],
        ['collector', collectorKind],
      ]),
    });
    await system.spawn({ kind: 'search', name: 'search/0' });
    await system.spawn({ kind: 'browse', name: 'browse/0' });
    await system.spawn({ kind: 'collector', name: 'collector' });
    await system.spawn({ kind: 'rollout', name: 'rollout/0', args: { maxConcurrent: 3 } });

    const policyConfig = {
      kind: 'chat' as const,
      baseURL: server.baseURL,
      model: 'policy',
      weightVersion: 7,
    };
    const reply = await system.ask('rollout/0', start(2, 4, { policy: policyConfig }));
    expect(reply).toEqual({ v: 1, type: 'rollout.start.reply', accepted: 8 });
    await waitFor(() => received.length === 8);
    const done = received as RolloutDone[];
    expect(new Set(done.map((d) => d.trajectory.id)).size).toBe(8);
    expect(done.every((d) => d.trajectory.scores?.f1 === 1 && d.worker === 'rollout/0')).toBe(true);
    expect(done.every((d) => d.trajectory.weightVersion === 7)).toBe(true);
    // Each trajectory browses with its own memory key and the query that found the page.
    expect(new Set(browsed.map((b) => b.trajectoryId)).size).toBe(8);
    expect(browsed.every((b) => b.subQuestion === 'tallest tower')).toBe(true);
    expect(done[0]?.trajectory.messages[5]?.content).toContain('Tower Alpha is 828 m tall.');
  });

  it('refuses a malformed start with a typed error and reports a batch whose policy cannot be built', async () => {
    system = createActorSystem({
      kinds: new Map<string, ActorFactory<never>>([
        ['rollout', rolloutActor],
        ['collector', collectorKind],
      ]),
    });
    await system.spawn({ kind: 'collector', name: 'collector' });
    await system.spawn({ kind: 'rollout', name: 'rollout/0', supervision: { strategy: 'restart' } });
    await expect(system.ask('rollout/0', { v: 1, type: 'rollout.start', jobId: 'x' })).rejects.toMatchObject({
      code: 'ROLLOUT_BAD_REQUEST',
    });
    const missingKey = start(1, 1, {
      policy: { kind: 'chat', baseURL: 'http://127.0.0.1:1/v1', model: 'm', apiKeyEnv: 'DR_TEST_UNSET_KEY' },
    });
    await system.ask('rollout/0', missingKey);
    await waitFor(() => received.length === 1);
    expect(received[0]).toMatchObject({
      type: 'rollout.failed',
      error: { code: 'ROLLOUT_POLICY_KEY_MISSING' },
    });
  });

  it('stops a cancelled job without reporting its unfinished trajectories', async () => {
    server = await startOpenAITestServer({ reply: () => ({ text: SCRIPT[0]!, delayMs: 200 }) });
    system = createActorSystem({
      kinds: new Map<string, ActorFactory<never>>([
        ['rollout', rolloutActor],
        ['search', searchKind],
        ['browse', browseKind],
        ['collector', collectorKind],
      ]),
    });
    await system.spawn({ kind: 'search', name: 'search/0' });
    await system.spawn({ kind: 'collector', name: 'collector' });
    await system.spawn({ kind: 'rollout', name: 'rollout/0' });
    await system.ask('rollout/0', start(2, 2));
    await new Promise((r) => setTimeout(r, 100));
    const status = await system.ask<{ running: string[] }>('rollout/0', {
      v: 1,
      type: 'rollout.status',
      jobId: 'job-1',
    });
    expect(status.running.sort()).toEqual(['q0#0', 'q0#1', 'q1#0', 'q1#1']);
    const cancel = await system.ask('rollout/0', { v: 1, type: 'rollout.cancel', jobId: 'job-1' });
    expect(cancel).toEqual({ v: 1, type: 'rollout.cancel.reply', cancelled: 4 });
    await new Promise((r) => setTimeout(r, 400));
    expect(received.map((r) => (r.type === 'rollout.done' ? r.trajectory.end : r.error))).toEqual([]);
  });

  it('keeps nothing of a finished batch: the abort signals its requests were given can be collected', async () => {
    // Like the openai SDK, this policy leaves a listener on every signal it is given; a signal shared by the
    // job and kept after the batch would keep each request's closure (and so its body) alive.
    const signals: WeakRef<AbortSignal>[] = [];
    const policy: Policy = {
      mode: 'chat',
      generate(_input, sampling): Promise<Generation> {
        const { signal } = sampling;
        if (signal !== undefined) {
          const request = { body: 'x'.repeat(1_000) };
          signal.addEventListener('abort', () => request.body.length);
          signals.push(new WeakRef(signal));
        }
        return Promise.resolve({ text: SCRIPT[2]!, finishReason: 'stop', weightVersion: 0 });
      },
    };
    system = createActorSystem({
      kinds: new Map<string, ActorFactory<never>>([
        ['rollout', createRolloutActor({ policy: () => Promise.resolve({ policy }) })],
        ['collector', collectorKind],
      ]),
    });
    await system.spawn({ kind: 'collector', name: 'collector' });
    await system.spawn({ kind: 'rollout', name: 'rollout/0' });
    for (const jobId of ['step-1', 'step-2']) await system.ask('rollout/0', start(2, 2, { jobId }));
    await waitFor(() => received.length === 8);
    expect(signals).toHaveLength(8);

    await new Promise((r) => setImmediate(r));
    collectGarbage();
    expect(signals.filter((s) => s.deref() !== undefined)).toHaveLength(0);
    const status = await system.ask<{ running: string[] }>('rollout/0', {
      v: 1,
      type: 'rollout.status',
      jobId: 'step-1',
    });
    expect(status.running).toEqual([]);
  });
});

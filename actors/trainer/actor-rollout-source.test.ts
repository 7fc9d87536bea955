import { afterEach, describe, expect, it } from 'vitest';
import type { Actor, ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import type { RolloutCancel, RolloutDone, RolloutStart, RolloutStartReply } from '../rollout/protocol.ts';
import type { Trajectory } from '../rollout/trajectory.ts';
import { ActorRolloutSource } from './actor-rollout-source.ts';

// A rollout worker that accepts every batch and keeps what it was sent; the test plays its rollout.done
// reports, so which batch a trajectory belongs to is under the test's control.
let system: ActorSystem;
const starts: RolloutStart[] = [];
const cancels: RolloutCancel[] = [];

function recordingWorker(): Actor {
  return {
    receive(raw: unknown): unknown {
      const msg = raw as RolloutStart | RolloutCancel;
      if (msg.type === 'rollout.cancel') {
        cancels.push(msg);
        return { v: 1, type: 'rollout.cancel.reply', cancelled: 0 };
      }
      starts.push(msg);
      const reply: RolloutStartReply = { v: 1, type: 'rollout.start.reply', accepted: msg.units.length };
      return reply;
    },
  };
}

afterEach(async () => {
  await system.stop();
  starts.length = 0;
  cancels.length = 0;
});

function sourceOf(signal: AbortSignal, workerCheckMs?: number): ActorRolloutSource {
  return new ActorRolloutSource((t, m, o) => system.ask(t, m, o), {
    jobId: 'job-r',
    workers: ['worker/0'],
    replyTo: 'trainer/job-r',
    policy: { kind: 'completions', baseURL: 'http://127.0.0.1:9/v1', model: 'm' },
    settings: { maxTurns: 1, maxTokensPerTurn: 8, temperature: 1, topP: 1, date: '2026-01-01' },
    beforeBatch: async () => 7,
    signal,
    ...(workerCheckMs === undefined ? {} : { workerCheckMs }),
  });
}

function done(start: RolloutStart, reward: number): RolloutDone {
  const unit = start.units[0]!;
  const trajectory = {
    id: `${unit.questionId}#${unit.sample}`,
    questionId: unit.questionId,
    sample: unit.sample,
    question: unit.question,
    messages: [],
    renderedText: '',
    responseText: '',
    tokenIds: [1, 2],
    lossMask: [0, 1],
    weightVersion: 7,
    turns: [],
    toolStats: { searchCalls: 0, browseCalls: 0, toolMs: 0 },
    end: { reason: 'answer' },
    scores: { f1: reward },
    startedAt: 0,
    finishedAt: 0,
  } as unknown as Trajectory;
  return { v: 1, type: 'rollout.done', jobId: start.jobId, worker: 'worker/0', trajectory };
}

async function until(probe: () => boolean): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('ActorRolloutSource', () => {
  it("never counts a stopped trainer incarnation's late trajectory in its restarted incarnation's batch", async () => {
    system = createActorSystem({ kinds: new Map([['worker', () => recordingWorker()]]) });
    await system.spawn({ kind: 'worker', name: 'worker/0' });
    const question = { id: 'q1', question: 'who?', groundTruth: 'me' };

    const stopped = new AbortController();
    const old = sourceOf(stopped.signal);
    const oldBatch = old.run([question], 1, { seed: 1, purpose: 'train' });
    await until(() => starts.length === 1);
    stopped.abort();
    await expect(oldBatch).rejects.toMatchObject({ code: 'TRAIN_CANCELLED' });
    // The stopped incarnation's batch is cancelled on its worker.
    await until(() => cancels.length === 1);
    expect(cancels[0]?.jobId).toBe(starts[0]?.jobId);

    const restarted = sourceOf(new AbortController().signal);
    const batch = restarted.run([question], 1, { seed: 1, purpose: 'train' });
    await until(() => starts.length === 2);
    const [oldStart, newStart] = starts as [RolloutStart, RolloutStart];
    expect(newStart.jobId).not.toBe(oldStart.jobId);
    // The old batch's trajectory arrives late, at the trainer actor, which routes it to the new source.
    restarted.deliver(done(oldStart, 0.25));
    restarted.deliver(done(newStart, 1));
    const rollouts = await batch;
    expect(rollouts.map((r) => r.reward)).toEqual([1]);
  });

  it('fails a batch whose worker is gone instead of waiting for its trajectories', async () => {
    system = createActorSystem({ kinds: new Map([['worker', () => recordingWorker()]]) });
    await system.spawn({ kind: 'worker', name: 'worker/0' });
    const batch = sourceOf(new AbortController().signal, 50).run(
      [{ id: 'q1', question: 'who?', groundTruth: 'me' }],
      2,
      { seed: 1, purpose: 'train' },
    );
    await until(() => starts.length === 1);
    await system.stopActor('worker/0');
    await expect(batch).rejects.toMatchObject({
      code: 'TRAIN_ROLLOUT_WORKER_LOST',
      message: expect.stringContaining('rollout worker worker/0 is gone (ACTOR_NOT_FOUND)'),
    });
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type { Actor, ActorSystem } from '../../runtime/actor.ts';
import { createActorSystem } from '../../runtime/local-system.ts';
import type {
  RolloutCancel,
  RolloutDone,
  RolloutStart,
  RolloutStartReply,
  RolloutStatus,
  RolloutStatusReply,
} from '../rollout/protocol.ts';
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
      const msg = raw as RolloutStart | RolloutCancel | RolloutStatus;
      if (msg.type === 'rollout.status') {
        const reply: RolloutStatusReply = { v: 1, type: 'rollout.status.reply', running: [] };
        return reply;
      }
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

function sourceOf(signal: AbortSignal, workerCheckMs?: number, workers = ['worker/0']): ActorRolloutSource {
  return new ActorRolloutSource((t, m, o) => system.ask(t, m, o), {
    jobId: 'job-r',
    workers,
    replyTo: 'trainer/job-r',
    policy: { kind: 'completions', baseURL: 'http://127.0.0.1:9/v1', model: 'm' },
    settings: { maxTurns: 1, maxTokensPerTurn: 8, temperature: 1, topP: 1, date: '2026-01-01' },
    beforeBatch: async () => 7,
    signal,
    ...(workerCheckMs === undefined ? {} : { workerCheckMs }),
  });
}

function done(start: RolloutStart, reward: number, unitIndex = 0): RolloutDone {
  const unit = start.units[unitIndex]!;
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

  it("sends a gone worker's outstanding units to another worker and counts a late duplicate once", async () => {
    system = createActorSystem({ kinds: new Map([['worker', () => recordingWorker()]]) });
    for (const name of ['worker/0', 'worker/1']) await system.spawn({ kind: 'worker', name });
    const source = sourceOf(new AbortController().signal, 50, ['worker/0', 'worker/1']);
    const batch = source.run([{ id: 'q1', question: 'who?', groundTruth: 'me' }], 4, {
      seed: 1,
      purpose: 'train',
    });
    await until(() => starts.length === 2);
    // Units are dealt in turn: worker/0 has samples 0 and 2, worker/1 samples 1 and 3.
    const lost = starts.find((s) => s.units[0]?.sample === 0)!;
    const kept = starts.find((s) => s.units[0]?.sample === 1)!;
    // worker/0 finishes sample 0, then goes away with sample 2.
    source.deliver(done(lost, 0.5, 0));
    await system.stopActor('worker/0');
    await until(() => starts.length === 3);
    const resent = starts[2]!;
    expect(resent.jobId).not.toBe(lost.jobId);
    expect(resent.units.map((u) => u.sample)).toEqual([2]);
    // Sample 0 arrives a second time (a slow worker's late report): it counts once.
    source.deliver(done(lost, 0.5, 0));
    source.deliver(done(kept, 0.1, 0));
    source.deliver(done(kept, 0.2, 1));
    source.deliver(done(resent, 0.9, 0));
    const rollouts = await batch;
    expect(rollouts.map((r) => r.reward).sort()).toEqual([0.1, 0.2, 0.5, 0.9]);
  });

  it('fails a batch whose units no worker of the job can take', async () => {
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

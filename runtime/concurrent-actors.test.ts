/**
 * SpawnSpec.maxConcurrency in one process: up to N receives in flight, each ask answered with its own
 * reply, supervision and mailbox bounds unchanged. Calls are held open by gates the test opens, so nothing
 * here depends on timing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isDrError } from '../config/errors.ts';
import type { ActorFactory, ActorSystem } from './actor.ts';
import { createActorSystem } from './local-system.ts';

type GateMsg = { op: 'hold'; id: string } | { op: 'fail'; id: string } | { op: 'boom' } | { op: 'stats' };

/** Calls waiting on the test: id -> open(). `hold` answers with its id once opened, `fail` throws then. */
const gates = new Map<string, () => void>();
const started: string[] = [];

async function opened(id: string): Promise<void> {
  started.push(id);
  await new Promise<void>((resolve) => gates.set(id, resolve));
}

function open(id: string): void {
  const release = gates.get(id);
  if (release === undefined) throw new Error(`call '${id}' has not started`);
  gates.delete(id);
  release();
}

/** Lets pending promise callbacks and the actor's scheduler run (nact dispatches on timers/microtasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

const gated: ActorFactory<{ incarnation: number }> = (args) => {
  let active = 0;
  let peak = 0;
  return {
    async receive(msg: GateMsg) {
      if (msg.op === 'stats') return { active, peak, incarnation: args.incarnation };
      if (msg.op === 'boom') throw new Error('boom requested');
      active++;
      peak = Math.max(peak, active);
      try {
        await opened(msg.id);
        if (msg.op === 'fail') throw new Error(`call ${msg.id} failed`);
        return msg.id;
      } finally {
        active--;
      }
    },
  };
};

let incarnations = 0;
const kinds = new Map([
  ['gated', ((_a, ctx) => gated({ incarnation: ++incarnations }, ctx)) as ActorFactory<never>],
  [
    'gated-declares-2',
    (async (_a, ctx) => ({
      ...(await gated({ incarnation: ++incarnations }, ctx)),
      maxConcurrency: 2,
    })) as ActorFactory<never>,
  ],
]);

let system: ActorSystem | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
  for (const release of gates.values()) release();
  gates.clear();
  started.length = 0;
});

const hold = (id: string, timeoutMs = 5_000) =>
  (system as ActorSystem).ask<string>('g', { op: 'hold', id }, { timeoutMs });

describe('actors with maxConcurrency', () => {
  it('keeps one receive at a time by default', async () => {
    system = createActorSystem({ kinds });
    await system.spawn({ kind: 'gated', name: 'g' });
    const a = hold('a');
    const b = hold('b');
    await settle();
    expect(started).toEqual(['a']);
    open('a');
    await expect(a).resolves.toBe('a');
    await settle();
    expect(started).toEqual(['a', 'b']);
    open('b');
    await expect(b).resolves.toBe('b');
  });

  it('runs up to maxConcurrency receives at once and starts the next when one finishes', async () => {
    system = createActorSystem({ kinds });
    await system.spawn({ kind: 'gated', name: 'g', maxConcurrency: 3 });
    const asks = ['a', 'b', 'c', 'd'].map((id) => hold(id));
    await settle();
    expect(started).toEqual(['a', 'b', 'c']);
    open('b');
    await expect(asks[1]).resolves.toBe('b');
    await settle();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    for (const id of ['a', 'c', 'd']) open(id);
    expect(await Promise.all(asks)).toEqual(['a', 'b', 'c', 'd']);
    expect(await system.ask('g', { op: 'stats' })).toMatchObject({ active: 0, peak: 3 });
  });

  it('answers each ask with its own reply when they finish out of order', async () => {
    system = createActorSystem({ kinds });
    await system.spawn({ kind: 'gated', name: 'g', maxConcurrency: 8 });
    const ids = ['1', '2', '3', '4', '5', '6'];
    const asks = ids.map((id) => hold(id));
    await settle();
    const order: string[] = [];
    asks.forEach((p) => void p.then((v) => order.push(v)));
    for (const id of [...ids].reverse()) {
      open(id);
      await settle();
    }
    expect(await Promise.all(asks)).toEqual(ids);
    expect(order).toEqual([...ids].reverse());
  });

  it('fails a throwing call with its error, gives up the others in flight, and restarts the actor', async () => {
    system = createActorSystem({ kinds });
    await system.spawn({
      kind: 'gated',
      name: 'g',
      maxConcurrency: 4,
      supervision: { strategy: 'restart', backoffInitialMs: 1 },
    });
    const before = (await system.ask<{ incarnation: number }>('g', { op: 'stats' })).incarnation;
    const bad = system.ask('g', { op: 'fail', id: 'bad' });
    const other = hold('other');
    await settle();
    open('bad');
    await expect(bad).rejects.toThrow('call bad failed');
    await expect(other).rejects.toSatisfy((e) => isDrError(e, 'ACTOR_STOPPED'));
    const after = await system.ask<{ incarnation: number; active: number }>('g', { op: 'stats' });
    expect(after).toMatchObject({ incarnation: before + 1, active: 0 });
    expect(await system.actors()).toEqual([expect.objectContaining({ name: 'g', restarts: 1 })]);
    open('other');
    const again = hold('again');
    await settle();
    open('again');
    await expect(again).resolves.toBe('again');
  });

  it('stops the actor on a throwing call under the stop strategy and fails the asks in flight', async () => {
    system = createActorSystem({ kinds });
    await system.spawn({ kind: 'gated', name: 'g', maxConcurrency: 2, supervision: { strategy: 'stop' } });
    const waiting = hold('waiting');
    await settle();
    await expect(system.ask('g', { op: 'boom' })).rejects.toThrow('boom requested');
    await expect(waiting).rejects.toSatisfy((e) => isDrError(e, 'ACTOR_STOPPED'));
    await expect(system.ask('g', { op: 'stats' })).rejects.toSatisfy((e) => isDrError(e, 'ACTOR_NOT_FOUND'));
  });

  it('bounds the waiting messages by the mailbox capacity, beside those in flight', async () => {
    system = createActorSystem({ kinds, mailboxCapacity: 2 });
    await system.spawn({ kind: 'gated', name: 'g', maxConcurrency: 2 });
    const inFlight = [hold('a'), hold('b')];
    await settle();
    const waiting = [hold('c'), hold('d')];
    await expect(hold('e')).rejects.toSatisfy((e) => isDrError(e, 'ACTOR_MAILBOX_FULL'));
    for (const id of ['a', 'b']) open(id);
    await settle();
    for (const id of ['c', 'd']) open(id);
    expect(await Promise.all([...inFlight, ...waiting])).toEqual(['a', 'b', 'c', 'd']);
  });

  it('times out an ask in flight without holding up the others', async () => {
    system = createActorSystem({ kinds });
    await system.spawn({ kind: 'gated', name: 'g', maxConcurrency: 2 });
    const slow = hold('slow', 50);
    const fast = hold('fast');
    await settle();
    open('fast');
    await expect(fast).resolves.toBe('fast');
    await expect(slow).rejects.toSatisfy((e) => isDrError(e, 'ACTOR_ASK_TIMEOUT'));
  });

  it('takes the concurrency an actor kind declares unless the spawn spec sets one', async () => {
    system = createActorSystem({ kinds });
    await system.spawn({ kind: 'gated-declares-2', name: 'g' });
    const declared = ['a', 'b', 'c'].map((id) => hold(id));
    await settle();
    expect(started).toEqual(['a', 'b']);
    for (const id of ['a', 'b']) open(id);
    await settle();
    open('c');
    await Promise.all(declared);
    await system.stopActor('g');
    started.length = 0;

    await system.spawn({ kind: 'gated-declares-2', name: 'g', maxConcurrency: 1 });
    const overridden = ['d', 'e'].map((id) => hold(id));
    await settle();
    expect(started).toEqual(['d']);
    open('d');
    await settle();
    open('e');
    expect(await Promise.all(overridden)).toEqual(['d', 'e']);
  });

  it('refuses a maxConcurrency that is not an integer of at least 1', async () => {
    system = createActorSystem({ kinds });
    for (const maxConcurrency of [0, 1.5, -2, Number.NaN]) {
      await expect(system.spawn({ kind: 'gated', name: 'g', maxConcurrency })).rejects.toSatisfy((e) =>
        isDrError(e, 'ACTOR_BAD_SPEC'),
      );
    }
  });
});

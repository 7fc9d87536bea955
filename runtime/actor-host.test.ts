/**
 * ActorHost's asks from the wire (`askWith(..., now)`): an idle actor is drained in the caller's callback
 * instead of on nact's next turn, with one receive at a time, mailbox order and supervision unchanged.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isDrError } from '../config/errors.ts';
import { silentLogger } from '../config/log.ts';
import type { ActorFactory, ActorSystem, SupervisionPolicy } from './actor.ts';
import { ActorHost, type Reply } from './actor-host.ts';
import { contextFor, createActorSystem } from './local-system.ts';

type Msg = { op: 'echo'; value: string } | { op: 'hold'; id: string } | { op: 'throw' } | { op: 'reject' };

/** Calls held open until the test opens them, so nothing here depends on timing. */
const gates = new Map<string, () => void>();
function open(id: string): void {
  const release = gates.get(id);
  if (release === undefined) throw new Error(`call '${id}' has not started`);
  gates.delete(id);
  release();
}
let incarnations = 0;

const probe: ActorFactory = () => {
  const incarnation = ++incarnations;
  let active = 0;
  let peak = 0;
  return {
    receive(raw) {
      const msg = raw as Msg | { op: 'stats' };
      switch (msg.op) {
        case 'echo':
          return Promise.resolve(msg.value);
        case 'throw':
          throw new Error('thrown in receive');
        case 'reject':
          return Promise.reject(new Error('rejected in receive'));
        case 'stats':
          return { incarnation, peak };
        case 'hold':
          active++;
          peak = Math.max(peak, active);
          return new Promise<string>((resolve) =>
            gates.set(msg.id, () => {
              active--;
              resolve(msg.id);
            }),
          );
      }
    },
  };
};

/** A reply that records how it was settled. */
function recorder(log: string[]): Reply & { settled: Promise<unknown> } {
  let done: (v: unknown) => void = () => undefined;
  const settled = new Promise((r) => (done = r));
  return {
    settled,
    resolve: (v) => {
      log.push(`reply ${String(v)}`);
      done(v);
    },
    reject: (e) => {
      log.push(`fail ${isDrError(e) ? e.code : (e as Error).message}`);
      done(e);
    },
  };
}

const turn = () => new Promise((r) => setImmediate(r));

let host: ActorHost | undefined;
let system: ActorSystem | undefined;
afterEach(async () => {
  await host?.stopAll();
  await system?.stop();
  host = undefined;
  system = undefined;
  gates.clear();
});

async function hostWith(strategy: SupervisionPolicy['strategy'] = 'restart'): Promise<ActorHost> {
  system = createActorSystem({ kinds: new Map(), logger: silentLogger });
  const sys = system;
  host = new ActorHost({
    kinds: new Map([['probe', probe]]),
    rank: 0,
    logger: silentLogger,
    contextFor: (self, log) => contextFor(sys, self, log),
  });
  await host.spawn({
    kind: 'probe',
    name: 'p',
    supervision: { strategy, backoffInitialMs: 1, backoffMaxMs: 1, maxRestarts: 5, windowMs: 60_000 },
  });
  return host;
}

describe('asks from the wire', () => {
  it('answers an ask to an idle actor before the event loop turns', async () => {
    const h = await hostWith();
    const order: string[] = [];
    setImmediate(() => order.push('next turn'));
    h.askWith('p', { op: 'echo', value: 'x' }, recorder(order), true);
    await turn();
    expect(order).toEqual(['reply x', 'next turn']);
  });

  it('keeps one receive at a time: asks arriving while one runs wait for it, in order', async () => {
    const h = await hostWith();
    const order: string[] = [];
    for (const id of ['a', 'b', 'c']) h.askWith('p', { op: 'hold', id }, recorder(order), true);
    await turn();
    expect([...gates.keys()]).toEqual(['a']);
    open('a');
    await turn();
    expect([...gates.keys()]).toEqual(['b']);
    open('b');
    await turn();
    open('c');
    await turn();
    expect(order).toEqual(['reply a', 'reply b', 'reply c']);
    const stats = recorder([]);
    h.askWith('p', { op: 'stats' }, stats, true);
    expect(await stats.settled).toMatchObject({ peak: 1 });
  });

  it('fails an ask whose receive throws or rejects and restarts the actor under the same name', async () => {
    const h = await hostWith();
    const order: string[] = [];
    const thrown = recorder(order);
    h.askWith('p', { op: 'throw' }, thrown, true);
    const waiting = recorder(order);
    h.askWith('p', { op: 'echo', value: 'after throw' }, waiting, true);
    await waiting.settled;
    const rejected = recorder(order);
    h.askWith('p', { op: 'reject' }, rejected, true);
    await rejected.settled;
    const stats = recorder([]);
    h.askWith('p', { op: 'stats' }, stats, true);
    expect(await stats.settled).toMatchObject({ incarnation: incarnations });
    expect(order).toEqual(['fail thrown in receive', 'reply after throw', 'fail rejected in receive']);
    expect(h.list()).toEqual([expect.objectContaining({ name: 'p', state: 'running', restarts: 2 })]);
  });

  it("stops the actor on a failing ask under the 'stop' strategy and fails the asks behind it", async () => {
    const h = await hostWith('stop');
    const order: string[] = [];
    h.askWith('p', { op: 'throw' }, recorder(order), true);
    const behind = recorder(order);
    h.askWith('p', { op: 'echo', value: 'never' }, behind, true);
    await behind.settled;
    expect(order).toEqual(['fail thrown in receive', 'fail ACTOR_STOPPED']);
    expect(h.has('p')).toBe(false);
  });
});

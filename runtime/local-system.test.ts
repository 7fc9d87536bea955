import pino from 'pino';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { isDrError } from '../config/errors.ts';
import type { Actor, ActorFactory, ActorSystem } from './actor.ts';
import { createActorSystem } from './local-system.ts';

type CounterMsg = { op: 'add'; n: number } | { op: 'get' } | { op: 'boom' } | { op: 'sleep'; ms: number };

/** Counts; 'boom' throws. Each incarnation starts from the spawn args, so a restart is visible. */
const counter: ActorFactory<{ start: number }> = (args) => {
  let total = args.start;
  return {
    async receive(msg: CounterMsg) {
      switch (msg.op) {
        case 'add':
          total += msg.n;
          return total;
        case 'get':
          return total;
        case 'boom':
          throw new Error('boom requested');
        case 'sleep':
          await new Promise((r) => setTimeout(r, msg.ms));
          return 'slept';
      }
    },
  } satisfies Actor;
};

function captureLogs(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out.push(String(chunk));
      cb();
    },
  });
  return {
    logger: pino({ level: 'info' }, stream),
    lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const kinds = new Map([['counter', counter as ActorFactory<never>]]);
let system: ActorSystem | undefined;
afterEach(async () => {
  await system?.stop();
  system = undefined;
});

describe('local actor system', () => {
  it('delivers tells in order and answers asks with the value receive returns', async () => {
    system = createActorSystem({ kinds });
    const ref = await system.spawn({ kind: 'counter', name: 'c/0', args: { start: 10 } });
    expect(ref).toEqual({ name: 'c/0', node: 0 });
    system.tell(ref, { op: 'add', n: 1 });
    system.tell('c/0', { op: 'add', n: 2 });
    expect(await system.ask(ref, { op: 'get' })).toBe(13);
  });

  it('fails an ask to an unknown actor with ACTOR_NOT_FOUND', async () => {
    system = createActorSystem({ kinds });
    await expect(system.ask('nobody', {})).rejects.toSatisfy((e) => isDrError(e, 'ACTOR_NOT_FOUND'));
    expect(() => system?.tell('nobody', {})).toThrow(/no actor named 'nobody'/);
    await expect(system.resolve('nobody')).rejects.toSatisfy((e) => isDrError(e, 'ACTOR_NOT_FOUND'));
  });

  it('fails an ask that gets no reply in time with ACTOR_ASK_TIMEOUT', async () => {
    system = createActorSystem({ kinds });
    await system.spawn({ kind: 'counter', name: 'slow', args: { start: 0 } });
    const started = Date.now();
    await expect(system.ask('slow', { op: 'sleep', ms: 5_000 }, { timeoutMs: 50 })).rejects.toSatisfy((e) =>
      isDrError(e, 'ACTOR_ASK_TIMEOUT'),
    );
    // Long before the reply would come; the rest of the bound is slack for a loaded CI machine's event loop.
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it('restarts a failing actor under the same name with a fresh incarnation, logging the failing message', async () => {
    const logs = captureLogs();
    system = createActorSystem({ kinds, logger: logs.logger });
    await system.spawn({
      kind: 'counter',
      name: 'c/r',
      args: { start: 5 },
      supervision: { backoffInitialMs: 1 },
    });
    await system.ask('c/r', { op: 'add', n: 100 });
    await expect(system.ask('c/r', { op: 'boom' })).rejects.toThrow('boom requested');
    expect(await system.ask('c/r', { op: 'get' })).toBe(5);
    const [info] = await system.actors();
    expect(info).toMatchObject({ name: 'c/r', state: 'running', restarts: 1 });
    const failure = logs.lines().find((l) => l.msg === 'actor failed while handling a message');
    expect(failure).toMatchObject({ actor: 'c/r', rank: 0, failingMessage: '{"op":"boom"}' });
  });

  it('keeps messages sent during the restart backoff and delivers them to the new incarnation', async () => {
    system = createActorSystem({ kinds });
    await system.spawn({
      kind: 'counter',
      name: 'c/b',
      args: { start: 0 },
      supervision: { backoffInitialMs: 100 },
    });
    system.tell('c/b', { op: 'boom' });
    system.tell('c/b', { op: 'add', n: 7 });
    expect(await system.ask('c/b', { op: 'get' })).toBe(7);
  });

  it('marks an actor failed and removes it once it exceeds maxRestarts in the window', async () => {
    system = createActorSystem({ kinds });
    const supervision = { maxRestarts: 2, windowMs: 60_000, backoffInitialMs: 1 };
    await system.spawn({ kind: 'counter', name: 'flaky', args: { start: 0 }, supervision });
    for (let i = 0; i < 3; i++)
      await expect(system.ask('flaky', { op: 'boom' })).rejects.toThrow('boom requested');
    await expect(system.ask('flaky', { op: 'get' })).rejects.toSatisfy((e) =>
      isDrError(e, 'ACTOR_NOT_FOUND'),
    );
  });

  it("stops an actor whose strategy is 'stop' on its first failure and runs its stop hook", async () => {
    let stopped = 0;
    const fragile: ActorFactory = () => ({
      receive() {
        throw new Error('fragile');
      },
      stop() {
        stopped++;
      },
    });
    system = createActorSystem({ kinds: new Map([['fragile', fragile as ActorFactory<never>]]) });
    await system.spawn({ kind: 'fragile', name: 'f', supervision: { strategy: 'stop' } });
    await expect(system.ask('f', 'x')).rejects.toThrow('fragile');
    await expect(system.ask('f', 'x')).rejects.toSatisfy((e) => isDrError(e, 'ACTOR_NOT_FOUND'));
    expect(stopped).toBe(1);
  });

  it("removes an actor whose strategy is 'escalate' on its first failure", async () => {
    system = createActorSystem({ kinds });
    await system.spawn({
      kind: 'counter',
      name: 'esc',
      args: { start: 0 },
      supervision: { strategy: 'escalate' },
    });
    await expect(system.ask('esc', { op: 'boom' })).rejects.toThrow('boom requested');
    expect(await system.actors()).toEqual([]);
  });

  it('fails asks not yet answered with ACTOR_STOPPED when the system stops', async () => {
    system = createActorSystem({ kinds });
    await system.spawn({ kind: 'counter', name: 'busy', args: { start: 0 } });
    const inFlight = system.ask('busy', { op: 'sleep', ms: 50 });
    const waiting = system.ask('busy', { op: 'get' });
    await system.stop();
    await expect(waiting).rejects.toSatisfy((e) => isDrError(e, 'ACTOR_STOPPED'));
    await expect(inFlight).rejects.toSatisfy((e) => isDrError(e, 'ACTOR_STOPPED'));
  });

  it('refuses unknown kinds, taken names, factory failures and unmet placements with typed errors', async () => {
    const broken: ActorFactory = () => {
      throw new Error('missing api key');
    };
    system = createActorSystem({ kinds: new Map([...kinds, ['broken', broken as ActorFactory<never>]]) });
    await system.spawn({ kind: 'counter', name: 'taken', args: { start: 0 } });
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: unknown) => (isDrError(e) ? e.code : 'untyped'),
      );
    expect(await codeOf(system.spawn({ kind: 'nope', name: 'x' }))).toBe('ACTOR_KIND_UNKNOWN');
    expect(await codeOf(system.spawn({ kind: 'counter', name: 'taken', args: { start: 0 } }))).toBe(
      'ACTOR_NAME_TAKEN',
    );
    expect(await codeOf(system.spawn({ kind: 'broken', name: 'b' }))).toBe('ACTOR_SPAWN_FAILED');
    expect(
      await codeOf(
        system.spawn({ kind: 'counter', name: 'g', placement: { kind: 'resource', resource: 'gpu' } }),
      ),
    ).toBe('ACTOR_PLACEMENT_UNSATISFIABLE');
  });

  it('bounds each mailbox: a tell beyond capacity throws ACTOR_MAILBOX_FULL', async () => {
    system = createActorSystem({ kinds, mailboxCapacity: 3 });
    await system.spawn({ kind: 'counter', name: 'small', args: { start: 0 } });
    for (let i = 0; i < 3; i++) system.tell('small', { op: 'add', n: 1 });
    expect(() => system?.tell('small', { op: 'add', n: 1 })).toThrow(
      expect.objectContaining({ code: 'ACTOR_MAILBOX_FULL' }),
    );
    await expect.poll(() => system?.ask('small', { op: 'get' }).catch(() => 'full')).toBe(3);
  });

  it('lets an actor ask another through its context', async () => {
    const proxy: ActorFactory = () => ({
      receive: (msg, ctx) => ctx.ask('c/p', msg),
    });
    system = createActorSystem({ kinds: new Map([...kinds, ['proxy', proxy as ActorFactory<never>]]) });
    await system.spawn({ kind: 'counter', name: 'c/p', args: { start: 1 } });
    await system.spawn({ kind: 'proxy', name: 'p' });
    expect(await system.ask('p', { op: 'add', n: 1 })).toBe(2);
  });
});

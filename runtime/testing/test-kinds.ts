/**
 * Actor kinds for the cluster's own tests and benchmark (`--kinds runtime/testing/test-kinds.ts`).
 * `echo` answers with where it runs; `counter` keeps a per-incarnation count; `relay` asks another actor
 * through its context; `count` reports how many other messages it has handled; `peak` the most receives it
 * has had in flight at once (spawned with maxConcurrency > 1).
 */
import type { ActorFactory, ActorKinds } from '../actor.ts';

export type TestMsg =
  | { op: 'where' }
  | { op: 'echo'; value: unknown }
  | { op: 'add'; n: number }
  | { op: 'get' }
  | { op: 'sleep'; ms: number }
  | { op: 'boom' }
  | { op: 'relay'; to: string; msg: TestMsg; timeoutMs?: number }
  | { op: 'count' }
  | { op: 'peak' }
  | { op: 'tell'; to: string; msg: TestMsg };

const echo: ActorFactory = (_args, ctx) => {
  let total = 0;
  let told = 0;
  let active = 0;
  let peak = 0;
  return {
    async receive(raw) {
      const msg = raw as TestMsg;
      if (msg.op !== 'count') told++;
      active++;
      peak = Math.max(peak, active);
      try {
        return await handle(msg);
      } finally {
        active--;
      }
    },
  };

  async function handle(msg: TestMsg): Promise<unknown> {
    switch (msg.op) {
      case 'where':
        return { rank: ctx.rank, pid: process.pid, name: ctx.self.name };
      case 'echo':
        return msg.value;
      case 'add':
        total += msg.n;
        return total;
      case 'get':
        return total;
      case 'sleep':
        await new Promise((r) => setTimeout(r, msg.ms));
        return 'slept';
      case 'boom':
        throw new Error('boom requested');
      case 'relay':
        return ctx.ask(msg.to, msg.msg, { timeoutMs: msg.timeoutMs ?? 5_000 });
      case 'tell':
        ctx.tell(msg.to, msg.msg);
        return null;
      case 'count':
        return told;
      case 'peak':
        return peak;
    }
  }
};

export const kinds: ActorKinds = new Map([['echo', echo]]);

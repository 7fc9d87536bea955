import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineEntry, DeadlineQueue } from './deadline-queue.ts';

class Wait extends DeadlineEntry {
  expiredAt: number | undefined;
  constructor(readonly id: string) {
    super();
  }
}

const TICK = 5;
let queue: DeadlineQueue<Wait>;

beforeEach(() => {
  vi.useFakeTimers();
  queue = new DeadlineQueue<Wait>((w) => (w.expiredAt = performance.now()), TICK);
});

afterEach(() => {
  queue.clear();
  vi.useRealTimers();
});

function add(id: string, timeoutMs: number): Wait {
  const w = new Wait(id);
  queue.add(w, timeoutMs);
  return w;
}

describe('DeadlineQueue', () => {
  it('expires an entry at its deadline, not before', () => {
    const start = performance.now();
    const w = add('a', 100);
    vi.advanceTimersByTime(99);
    expect(w.expiredAt).toBeUndefined();
    vi.advanceTimersByTime(TICK + 1);
    expect(w.expiredAt).toBeDefined();
    expect((w.expiredAt as number) - start).toBeGreaterThanOrEqual(100);
    expect(queue.size).toBe(0);
  });

  it('never expires an entry removed before its deadline', () => {
    const w = add('a', 50);
    expect(queue.remove(w)).toBe(true);
    vi.advanceTimersByTime(1_000);
    expect(w.expiredAt).toBeUndefined();
    expect(queue.remove(w)).toBe(false);
  });

  it('expires each entry within one tick of its own deadline when timeouts differ and interleave', () => {
    const start = performance.now();
    const waits = [add('long', 300), add('short', 20), add('mid', 100)];
    vi.advanceTimersByTime(50);
    waits.push(add('late-short', 30));
    vi.advanceTimersByTime(400);
    const timeouts: Record<string, number> = { long: 300, short: 20, mid: 100, 'late-short': 80 };
    for (const w of waits) {
      const late = (w.expiredAt as number) - start - (timeouts[w.id] as number);
      expect(late, w.id).toBeGreaterThanOrEqual(0);
      expect(late, w.id).toBeLessThanOrEqual(TICK + 1);
    }
  });

  it('keeps one timer for many waits of the same length as earlier ones settle', () => {
    const armed = vi.spyOn(globalThis, 'setTimeout');
    for (let i = 0; i < 1_000; i++) {
      const w = add(`w${i}`, 10_000);
      if (i % 10 !== 0) queue.remove(w);
      vi.advanceTimersByTime(1);
    }
    expect(armed.mock.calls.length).toBeLessThanOrEqual(1);
    expect(queue.size).toBe(100);
    armed.mockRestore();
  });

  it('expires the survivors of a busy period in deadline order', () => {
    const kept: Wait[] = [];
    for (let i = 0; i < 20; i++) {
      const w = add(`w${i}`, 1_000);
      if (i % 4 === 0) kept.push(w);
      else queue.remove(w);
      vi.advanceTimersByTime(10);
    }
    vi.advanceTimersByTime(2_000);
    const order = [...kept].sort((a, b) => (a.expiredAt as number) - (b.expiredAt as number));
    expect(order.map((w) => w.id)).toEqual(kept.map((w) => w.id));
    for (const w of kept) expect((w.expiredAt as number) - w.deadline).toBeLessThanOrEqual(TICK + 1);
  });

  it('does not keep the process alive when nothing is waiting', () => {
    const w = add('a', 60_000);
    expect(vi.getTimerCount()).toBe(1);
    queue.remove(w);
    // The timer lingers for reuse, unref'd; a new wait refs it again.
    const timer = (queue as unknown as { timer: NodeJS.Timeout }).timer;
    expect(timer.hasRef()).toBe(false);
    add('b', 60_000);
    expect(timer.hasRef()).toBe(true);
  });
});

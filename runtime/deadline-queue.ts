/**
 * Deadlines for many short-lived waits (asks in flight) on one timer. A setTimeout per ask allocates a
 * Timeout, inserts it into and removes it from the timer list, and at thousands of asks a second that churn
 * is a steady source of garbage. Here an entry links itself into a list per timeout length (a wait added
 * later with the same length ends later, so each list stays in deadline order with O(1) add and remove), and
 * one timer is armed for the earliest deadline. The timer is not re-armed when entries leave (it fires, finds
 * nothing due and re-arms for the new earliest), nor when an entry's deadline is less than `tickMs` before the
 * armed time: an entry expires no earlier than its deadline and at most `tickMs` (plus timer lateness) after.
 */

/** What the queue holds: the entry carries its own links, so adding one allocates nothing. */
export class DeadlineEntry {
  /** performance.now() at which the entry expires; set by `add`. */
  deadline = 0;
  prev: DeadlineEntry | undefined = undefined;
  next: DeadlineEntry | undefined = undefined;
  lane: Lane | undefined = undefined;
}

interface Lane {
  first: DeadlineEntry | undefined;
  last: DeadlineEntry | undefined;
}

const DEFAULT_TICK_MS = 5;

export class DeadlineQueue<E extends DeadlineEntry> {
  private readonly lanes = new Map<number, Lane>();
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (performance.now() time), Infinity when none is armed. */
  private armedAt = Infinity;
  private count = 0;

  constructor(
    private readonly onExpire: (entry: E) => void,
    private readonly tickMs = DEFAULT_TICK_MS,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Start `entry`'s clock: it expires `timeoutMs` from now unless removed first. */
  add(entry: E, timeoutMs: number): void {
    const deadline = performance.now() + timeoutMs;
    entry.deadline = deadline;
    let lane = this.lanes.get(timeoutMs);
    if (lane === undefined) {
      lane = { first: undefined, last: undefined };
      this.lanes.set(timeoutMs, lane);
    }
    entry.lane = lane;
    entry.prev = lane.last;
    entry.next = undefined;
    if (lane.last === undefined) lane.first = entry;
    else lane.last.next = entry;
    lane.last = entry;
    if (this.count++ === 0) this.timer?.ref();
    if (deadline < this.armedAt - this.tickMs) this.arm(deadline);
  }

  /** Stop `entry`'s clock (it was settled). Returns false if it was not in the queue. */
  remove(entry: E): boolean {
    const lane = entry.lane;
    if (lane === undefined) return false;
    if (entry.prev === undefined) lane.first = entry.next;
    else entry.prev.next = entry.next;
    if (entry.next === undefined) lane.last = entry.prev;
    else entry.next.prev = entry.prev;
    entry.prev = entry.next = entry.lane = undefined;
    // An idle queue must not keep the process alive; the timer stays (unref'd) so that the next add does
    // not need a new one.
    if (--this.count === 0) this.timer?.unref();
    return true;
  }

  /** Remove every entry without expiring it; the timer goes. */
  clear(): void {
    this.lanes.clear();
    this.count = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(at - performance.now())));
    if (this.count === 0) this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = performance.now();
    const due: E[] = [];
    let earliest = Infinity;
    for (const [ms, lane] of this.lanes) {
      let e = lane.first;
      while (e !== undefined && e.deadline <= now) {
        const next: DeadlineEntry | undefined = e.next;
        this.remove(e as E);
        due.push(e as E);
        e = next;
      }
      if (lane.first === undefined) this.lanes.delete(ms);
      else earliest = Math.min(earliest, lane.first.deadline);
    }
    if (earliest !== Infinity) this.arm(earliest);
    for (const e of due) this.onExpire(e);
  }
}

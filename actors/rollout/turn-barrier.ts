/**
 * The original DeepResearcher's turn-synchronous schedule, kept for comparison: every live trajectory of a
 * batch waits at each phase (generate, then tools) until all the others arrive, so one slow tool call
 * stalls the whole batch. Trajectories that finish leave the barrier.
 */
export class TurnBarrier {
  private waiting: Array<() => void> = [];

  constructor(private active: number) {}

  arrive(): Promise<void> {
    const released = new Promise<void>((resolve) => this.waiting.push(resolve));
    this.release();
    return released;
  }

  leave(): void {
    this.active -= 1;
    this.release();
  }

  private release(): void {
    if (this.waiting.length === 0 || this.waiting.length < this.active) return;
    const batch = this.waiting;
    this.waiting = [];
    for (const resolve of batch) resolve();
  }
}

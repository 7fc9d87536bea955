/**
 * Short-term memory of each trajectory: what the browser already told it. The reader sees these notes
 * (so it looks for new facts), and whatever it returns is filtered against them, so a repeated browse in
 * the same trajectory returns only what was not returned before. Bounded per trajectory (oldest notes go
 * first) and across trajectories (least recently used trajectories are evicted).
 */
import { Lru } from './lru.ts';

export interface MemoryOptions {
  maxTrajectories?: number;
  /** Characters of notes kept per trajectory. */
  maxCharsPerTrajectory?: number;
}

interface Entry {
  notes: string[];
  chars: number;
  /** Fingerprints of every unit returned; a note evicted for space still counts as returned. */
  seen: Set<string>;
}

const MAX_FINGERPRINTS = 20_000;

/** Case, punctuation and spacing do not make a fact new. */
export function fingerprint(unit: string): string {
  return unit
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** Splits reader output into units that can be compared: lines, and sentences within long lines. */
export function splitUnits(text: string): string[] {
  return text
    .split(/\n+/)
    .flatMap((line) => (line.length > 300 ? line.split(/(?<=[.!?])\s+(?=[A-Z0-9"'(])/) : [line]))
    .map((unit) => unit.trim())
    .filter((unit) => fingerprint(unit) !== '');
}

export class TrajectoryMemory {
  private readonly trajectories: Lru<string, Entry>;
  private readonly maxChars: number;

  constructor(options: MemoryOptions = {}) {
    this.trajectories = new Lru(options.maxTrajectories ?? 4_096);
    this.maxChars = options.maxCharsPerTrajectory ?? 16_000;
  }

  /** Notes already returned to the trajectory, oldest first. */
  notes(trajectoryId: string): string[] {
    return [...(this.trajectories.get(trajectoryId)?.notes ?? [])];
  }

  isNew(trajectoryId: string, unit: string): boolean {
    return !(this.trajectories.get(trajectoryId)?.seen.has(fingerprint(unit)) ?? false);
  }

  /** Keeps the units not returned before (nor repeated within `units`), records them, and returns them. */
  admit(trajectoryId: string, units: string[]): string[] {
    let entry = this.trajectories.get(trajectoryId);
    if (entry === undefined) {
      entry = { notes: [], chars: 0, seen: new Set() };
      this.trajectories.set(trajectoryId, entry);
    }
    const fresh: string[] = [];
    for (const unit of units) {
      const key = fingerprint(unit);
      if (key === '' || entry.seen.has(key)) continue;
      if (entry.seen.size >= MAX_FINGERPRINTS) entry.seen.delete(entry.seen.values().next().value as string);
      entry.seen.add(key);
      fresh.push(unit);
      entry.notes.push(unit);
      entry.chars += unit.length;
    }
    while (entry.chars > this.maxChars && entry.notes.length > 1)
      entry.chars -= (entry.notes.shift() as string).length;
    return fresh;
  }

  forget(trajectoryId: string): boolean {
    return this.trajectories.delete(trajectoryId);
  }

  get size(): number {
    return this.trajectories.size;
  }
}

/**
 * A job's recorded web on the head: `<dir>/web.jsonl`, one line per finished trajectory with its web calls
 * in order (actors/rollout/web-tape.ts). Written as trajectories finish (fsynced appends, so a head restart
 * keeps what was recorded), read back whole when a job replays it.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DrError } from '../../config/errors.ts';
import { appendDurablySync } from '../../runtime/durable-file.ts';
import type { Trajectory } from '../rollout/trajectory.ts';
import { WEB_REPLAY_MISS, webTapeLineSchema, type WebExchange } from '../rollout/web-tape.ts';

const FILE = 'web.jsonl';

/** A trajectory's key in a recording: its id without the job's (`<jobId>/<row>#<sample>` → `<row>#<sample>`),
 * the same for every job over one dataset. */
export function recordingKey(jobId: string, trajectoryId: string): string {
  return trajectoryId.startsWith(`${jobId}/`) ? trajectoryId.slice(jobId.length + 1) : trajectoryId;
}

export function appendWebRecording(dir: string, key: string, calls: readonly WebExchange[]): void {
  mkdirSync(dir, { recursive: true });
  appendDurablySync(join(dir, FILE), `${JSON.stringify({ trajectoryId: key, calls })}\n`);
}

/** Every recorded trajectory's calls, by recording key (the first line per key; a torn last line skipped). */
export function loadWebRecording(dir: string): Map<string, WebExchange[]> {
  const file = join(dir, FILE);
  if (!existsSync(file))
    throw new DrError(
      'JOB_WEB_RECORDING_MISSING',
      `no recorded web at ${file}; record one first with --web-record ${dir}`,
    );
  const tape = new Map<string, WebExchange[]>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    let parsed;
    try {
      parsed = webTapeLineSchema.safeParse(JSON.parse(line));
    } catch {
      continue;
    }
    if (parsed.success && !tape.has(parsed.data.trajectoryId))
      tape.set(parsed.data.trajectoryId, parsed.data.calls);
  }
  return tape;
}

/** Tool calls the recording did not hold, over some trajectories. */
export function replayMisses(trajectories: Iterable<Trajectory>): number {
  let misses = 0;
  for (const t of trajectories)
    for (const turn of t.turns) if (turn.tool?.error === WEB_REPLAY_MISS) misses++;
  return misses;
}

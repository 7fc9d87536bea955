/**
 * A job's whole run, step by step, for the dashboard: read from the JSON-lines file the job lists as its
 * `metrics` result (one record per event, each with a `type` and a numeric `step`), so the curves cover
 * every step since the run began rather than the head's recent wall-clock samples. Which fields become
 * which chart is data (`HistoryPanel`, with the training defaults in panels.ts); string fields named
 * `*File` are files of the run (relative to the metrics file's folder) that the step links to.
 *
 * Files are only ever served from inside that folder: a relative path that climbs out of it, or resolves
 * out of it through a symbolic link, is not a file of the run.
 */
import { readFile, realpath } from 'node:fs/promises';
import { dirname, extname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { MonitorSource } from './source.ts';

/** One chart over steps: each line is a numeric field of one record type, e.g. `step` → `rollout.f1Mean`. */
export interface HistoryPanel {
  id: string;
  title: string;
  unit: string;
  lines: ReadonlyArray<{ label: string; type: string; field: string }>;
}

export interface RunHistory {
  panels: Array<{
    id: string;
    title: string;
    unit: string;
    /** x: the steps of the panel's records; one y per line, null where a record lacks the field. */
    x: number[];
    series: Array<{ label: string; values: (number | null)[] }>;
  }>;
  /** Every step with a file, in step order: what the run wrote for it. */
  steps: Array<{ step: number; type: string; files: Array<{ label: string; path: string }> }>;
  /** Lines that were not a JSON record with a type and a step (a line being written, or damage). */
  skipped: number;
}

interface StepRecord {
  type: string;
  step: number;
  numbers: Map<string, number>;
  files: Map<string, string>;
}

const SERVED_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.jsonl': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
};

/** The job's `metrics` result file (an absolute `.jsonl` path), if it lists one. */
export function metricsFileOf(source: MonitorSource, jobId: string): string | undefined {
  const href = source
    .jobs()
    .find((j) => j.id === jobId)
    ?.results.find((r) => r.label === 'metrics')?.href;
  return href !== undefined && isAbsolute(href) && extname(href) === '.jsonl' ? href : undefined;
}

export async function readRunHistory(file: string, panels: readonly HistoryPanel[]): Promise<RunHistory> {
  const records: StepRecord[] = [];
  let skipped = 0;
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    if (line.trim() === '') continue;
    const record = parseRecord(line);
    if (record === null) skipped++;
    else records.push(record);
  }
  // A resumed run repeats steps: the latest record of a (type, step) wins.
  const latest = new Map<string, StepRecord>();
  for (const r of records) latest.set(`${r.type}\u0000${r.step}`, r);
  const ordered = [...latest.values()].sort((a, b) => a.step - b.step);
  return {
    panels: panels.map((p) => {
      const types = new Set(p.lines.map((l) => l.type));
      const rows = ordered.filter((r) => types.has(r.type));
      const x = [...new Set(rows.map((r) => r.step))];
      return {
        id: p.id,
        title: p.title,
        unit: p.unit,
        x,
        series: p.lines.map((l) => ({
          label: l.label,
          values: x.map((step) => latest.get(`${l.type}\u0000${step}`)?.numbers.get(l.field) ?? null),
        })),
      };
    }),
    steps: ordered
      .filter((r) => r.files.size > 0)
      .map((r) => ({
        step: r.step,
        type: r.type,
        files: [...r.files].map(([label, path]) => ({ label, path })),
      })),
    skipped,
  };
}

/**
 * The absolute path of `wanted` (relative, from a step's `files`) inside the run folder of `metricsFile`, with
 * its content type; undefined for anything outside that folder, a type not served, or a missing file.
 */
export async function runFile(
  metricsFile: string,
  wanted: string,
): Promise<{ path: string; type: string } | undefined> {
  const type = SERVED_TYPES[extname(wanted).toLowerCase()];
  if (type === undefined || isAbsolute(wanted)) return undefined;
  const root = dirname(metricsFile);
  const path = resolve(root, wanted);
  if (!inside(root, path)) return undefined;
  const [realRoot, realPath] = await Promise.all([realpath(root), realpath(path)]).catch(() => [null, null]);
  if (realRoot === null || realPath === null || !inside(realRoot, realPath)) return undefined;
  return { path: realPath, type };
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

function parseRecord(line: string): StepRecord | null {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const { type, step } = raw as { type?: unknown; step?: unknown };
  if (typeof type !== 'string' || typeof step !== 'number' || !Number.isFinite(step)) return null;
  const record: StepRecord = { type, step, numbers: new Map(), files: new Map() };
  flatten(raw as Record<string, unknown>, '', record);
  return record;
}

function flatten(value: Record<string, unknown>, prefix: string, into: StepRecord): void {
  for (const [key, v] of Object.entries(value)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (typeof v === 'number' && Number.isFinite(v)) into.numbers.set(path, v);
    else if (typeof v === 'string' && key.endsWith('File')) into.files.set(path, v);
    else if (typeof v === 'object' && v !== null && !Array.isArray(v))
      flatten(v as Record<string, unknown>, path, into);
  }
}

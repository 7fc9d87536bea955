import { isAbsolute, extname } from 'node:path';
import type { JobView, MonitorSource } from './source.ts';

const TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.jsonl': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.tsv': 'text/plain; charset=utf-8',
};

/**
 * Where the page links a job's result: files on the head through the dashboard, http(s) URLs as they are,
 * anything else (a `javascript:` URL, a relative path) not at all.
 */
export function resultLink(job: Pick<JobView, 'id' | 'results'>, index: number): string | null {
  const href = job.results[index]?.href ?? '';
  if (isAbsolute(href)) return `/results/${encodeURIComponent(job.id)}/${index}`;
  return /^https?:\/\//i.test(href) ? href : null;
}

/**
 * The file behind `/results/<job>/<index>`: only a path the job table lists for that job is ever served, so
 * a request cannot name a file of its own choosing. Undefined when there is no such job, index or file path.
 */
export function resultFile(
  source: MonitorSource,
  jobId: string,
  index: number,
): { path: string; type: string } | undefined {
  const href = source.jobs().find((j) => j.id === jobId)?.results[index]?.href;
  if (href === undefined || !isAbsolute(href)) return undefined;
  return { path: href, type: TYPES[extname(href).toLowerCase()] ?? 'application/octet-stream' };
}

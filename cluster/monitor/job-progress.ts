import type { JobView } from './source.ts';

/** Fraction done in [0, 1]; 0 when the total is not known yet. */
export function progressRatio(job: JobView): number {
  const { done, total } = job.progress;
  return total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
}

/**
 * Seconds left for a running job at its average rate since it started; null when it is not running or has
 * not finished an item yet (no rate to extrapolate from).
 */
export function etaSeconds(job: JobView, now: number): number | null {
  if (job.state !== 'running' || job.startedAt === undefined) return null;
  const { done, total } = job.progress;
  const elapsed = (now - job.startedAt) / 1000;
  if (done <= 0 || elapsed <= 0 || total <= 0) return null;
  return Math.max(0, (total - done) / (done / elapsed));
}

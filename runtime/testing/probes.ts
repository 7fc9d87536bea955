/**
 * Small probes that tests of the runtime share: what a promise failed with, and whether the event loop
 * kept turning while some work ran.
 */
import { isDrError } from '../../config/errors.ts';

/** The DrError code `p` rejects with ('no error' when it resolves; the error's text for a non-DrError). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (err) {
    return isDrError(err) ? err.code : String(err);
  }
}

/** How many times a 1 ms interval fires between the start and the end of `work`: about zero when the
 * work blocks the event loop, several when it runs off the main thread. */
export async function ticksDuring(work: () => Promise<unknown>): Promise<number> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    await work();
    return ticks;
  } finally {
    clearInterval(timer);
  }
}

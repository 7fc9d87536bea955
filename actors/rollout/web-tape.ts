/**
 * Record and replay of the web a job saw. Recording keeps, per trajectory, every web_search and
 * browse_webpage call in order with the text it returned (or the error it failed with); the job manager
 * writes them to `<dir>/web.jsonl`. Replaying answers each call from that tape instead of the live tools,
 * so an evaluation or a training step can be repeated exactly though the web has changed since. A call the
 * tape does not hold (another tool, other arguments, or more calls than recorded) is a miss: it fails with
 * WEB_REPLAY_MISS (`onMiss: 'error'`), or goes to the live tools from there on (`onMiss: 'live'`).
 *
 * Here a tape is keyed by trajectory id; on disk the job manager keys it by the part of the id that is the
 * same for every job over one dataset (actors/jobs/web-recording.ts).
 */
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import type { ToolContext, ToolRunner } from './tool-runner.ts';

export const webExchangeSchema = z.object({
  tool: z.enum(['web_search', 'browse_webpage']),
  args: z.array(z.string()),
  text: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type WebExchange = z.infer<typeof webExchangeSchema>;

export const webTapeSettingsSchema = z.object({
  record: z.boolean(),
  /** Per trajectory id, the calls to answer from. */
  replay: z.record(z.string(), z.array(webExchangeSchema)).optional(),
  onMiss: z.enum(['error', 'live']).default('error'),
});
export type WebTapeSettings = z.infer<typeof webTapeSettingsSchema>;

/** One line of `<dir>/web.jsonl`. */
export const webTapeLineSchema = z.object({ trajectoryId: z.string(), calls: z.array(webExchangeSchema) });

export const WEB_REPLAY_MISS = 'WEB_REPLAY_MISS';

export class TapedTools implements ToolRunner {
  readonly #recorded = new Map<string, WebExchange[]>();
  /** Next tape position per trajectory; Infinity once a miss sent it to the live tools. */
  readonly #cursor = new Map<string, number>();

  constructor(
    private readonly live: ToolRunner,
    private readonly settings: WebTapeSettings,
  ) {}

  webSearch(queries: string[], ctx: ToolContext): Promise<string> {
    return this.#call('web_search', queries, ctx, () => this.live.webSearch(queries, ctx));
  }

  browse(urls: string[], ctx: ToolContext): Promise<string> {
    return this.#call('browse_webpage', urls, ctx, () => this.live.browse(urls, ctx));
  }

  /** The calls recorded for a finished trajectory (and forgets them). */
  take(trajectoryId: string): WebExchange[] {
    const calls = this.#recorded.get(trajectoryId) ?? [];
    this.#recorded.delete(trajectoryId);
    this.#cursor.delete(trajectoryId);
    return calls;
  }

  async #call(
    tool: WebExchange['tool'],
    args: string[],
    ctx: ToolContext,
    live: () => Promise<string>,
  ): Promise<string> {
    const id = ctx.trajectoryId;
    const replay = this.settings.replay;
    if (replay !== undefined) {
      const at = this.#cursor.get(id) ?? 0;
      const next = replay[id]?.[at];
      if (next !== undefined && next.tool === tool && sameArgs(next.args, args)) {
        this.#cursor.set(id, at + 1);
        if (next.error !== undefined) throw new DrError(next.error.code, next.error.message);
        return next.text ?? '';
      }
      if (at !== Infinity) {
        if (this.settings.onMiss === 'error')
          throw new DrError(
            WEB_REPLAY_MISS,
            `the recorded web has no ${tool} call #${at + 1} of ${id} with arguments ${JSON.stringify(args)}; record the job again, or replay with onMiss 'live' to fetch what is missing`,
          );
        this.#cursor.set(id, Infinity);
      }
    }
    try {
      const text = await live();
      this.#record(id, { tool, args, text });
      return text;
    } catch (err) {
      const e = err instanceof DrError ? err : new DrError('TOOL_FAILED', String(err));
      this.#record(id, { tool, args, error: { code: e.code, message: e.message } });
      throw err;
    }
  }

  #record(id: string, exchange: WebExchange): void {
    if (!this.settings.record) return;
    let calls = this.#recorded.get(id);
    if (calls === undefined) this.#recorded.set(id, (calls = []));
    calls.push(exchange);
  }
}

function sameArgs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

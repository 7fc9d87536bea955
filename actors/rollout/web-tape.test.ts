import { describe, expect, it } from 'vitest';
import { DrError, isDrError } from '../../config/errors.ts';
import type { ToolContext, ToolRunner } from './tool-runner.ts';
import { TapedTools, WEB_REPLAY_MISS, type WebExchange } from './web-tape.ts';

const ctx: ToolContext = { trajectoryId: 'r0#0', question: 'q' };

/** A live web that answers with a counter, and fails on the url `bad`. */
function liveWeb(): ToolRunner & { calls: number } {
  const web = {
    calls: 0,
    webSearch: async (queries: string[]) => `live ${++web.calls}: ${queries.join(',')}`,
    browse: async (urls: string[]) => {
      web.calls++;
      if (urls.includes('bad')) throw new DrError('BROWSE_FETCH', 'the page did not load');
      return `page ${urls.join(',')}`;
    },
  };
  return web;
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

describe('TapedTools', () => {
  it('records each call of a trajectory in order, failures included', async () => {
    const tools = new TapedTools(liveWeb(), { record: true, onMiss: 'error' });
    await tools.webSearch(['a'], ctx);
    await failure(tools.browse(['bad'], ctx));
    expect(tools.take('r0#0')).toEqual([
      { tool: 'web_search', args: ['a'], text: 'live 1: a' },
      {
        tool: 'browse_webpage',
        args: ['bad'],
        error: { code: 'BROWSE_FETCH', message: 'the page did not load' },
      },
    ]);
    expect(tools.take('r0#0')).toEqual([]);
  });

  it('replays the recorded texts and errors without touching the live web', async () => {
    const live = liveWeb();
    const recorder = new TapedTools(live, { record: true, onMiss: 'error' });
    await recorder.webSearch(['a'], ctx);
    await failure(recorder.browse(['bad'], ctx));
    const tape: Record<string, WebExchange[]> = { 'r0#0': recorder.take('r0#0') };

    const before = live.calls;
    const replay = new TapedTools(live, { record: false, replay: tape, onMiss: 'error' });
    expect(await replay.webSearch(['a'], ctx)).toBe('live 1: a');
    const err = await failure(replay.browse(['bad'], ctx));
    expect(isDrError(err, 'BROWSE_FETCH')).toBe(true);
    expect(live.calls).toBe(before);
  });

  it('fails a call the tape lacks with WEB_REPLAY_MISS, or sends it and the rest live with onMiss live', async () => {
    const tape = { 'r0#0': [{ tool: 'web_search' as const, args: ['a'], text: 'recorded a' }] };
    const strict = new TapedTools(liveWeb(), { record: false, replay: tape, onMiss: 'error' });
    const err = await failure(strict.webSearch(['other'], ctx));
    expect(isDrError(err, WEB_REPLAY_MISS)).toBe(true);
    expect((err as Error).message).toMatch(/call #1 of r0#0/);

    const lenient = new TapedTools(liveWeb(), { record: false, replay: tape, onMiss: 'live' });
    expect(await lenient.webSearch(['other'], ctx)).toBe('live 1: other');
    // Once off the tape, the trajectory stays live: its later calls no longer line up with the recording.
    expect(await lenient.webSearch(['a'], ctx)).toBe('live 2: a');
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { ChatPolicy } from './chat-policy.ts';
import { CompletionPolicy } from './completion-policy.ts';
import { startOpenAITestServer, type OpenAITestServer, type ScriptedRequest } from './openai-test-server.ts';
import { runTrajectory, DEFAULT_ROLLOUT_SETTINGS } from './run-trajectory.ts';
import type { ToolContext, ToolRunner } from './tool-runner.ts';
import { TurnBarrier } from './turn-barrier.ts';
import { describeCacheHits, toolCounts } from './trajectory.ts';

const settings = { ...DEFAULT_ROLLOUT_SETTINGS, date: new Date('2026-11-25T00:00:00Z') };
const bytes = { encode: (text: string): number[] => [...Buffer.from(text, 'utf8')] };

const SEARCH =
  '<think>search first</think>\n<tool_call>\n{"name": "web_search", "arguments": {"query": ["tallest tower"]}}\n</tool_call>';
const BROWSE =
  '<think>read it</think>\n<tool_call>\n{"name": "browse_webpage", "arguments": {"url_list": ["http://web.test/tower"]}}\n</tool_call>';
const ANSWER = '<think>found it</think>\n<answer>Tower Alpha</answer>';

/** The policy's n-th turn is decided by how many tool responses the conversation already holds. */
function turnOf(req: ScriptedRequest): number {
  if (req.messages !== undefined)
    return req.messages.filter((m) => m.content.startsWith('<tool_response>')).length;
  const prompt = Array.isArray(req.prompt) ? Buffer.from(req.prompt).toString('utf8') : (req.prompt ?? '');
  return prompt.split('<|im_start|>user\n<tool_response>').length - 1;
}

class RecordingTools implements ToolRunner {
  calls: Array<{ tool: string; args: string[]; ctx: ToolContext }> = [];
  constructor(private readonly delayMs: (args: string[]) => number = () => 0) {}
  private async wait(args: string[]): Promise<void> {
    const ms = this.delayMs(args);
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  }
  async webSearch(queries: string[], ctx: ToolContext): Promise<string> {
    this.calls.push({ tool: 'web_search', args: queries, ctx });
    await this.wait(queries);
    return '[1] Tower Alpha is the tallest\nURL: http://web.test/tower';
  }
  async browse(urls: string[], ctx: ToolContext): Promise<string> {
    this.calls.push({ tool: 'browse_webpage', args: urls, ctx });
    await this.wait(urls);
    return 'From http://web.test/tower:\nTower Alpha, 828 m.';
  }
}

describe('runTrajectory', () => {
  let server: OpenAITestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('does not run a call the budget refuses, tells the model so, and lets it answer', async () => {
    server = await startOpenAITestServer({ reply: (req) => [SEARCH, BROWSE, ANSWER][turnOf(req)] ?? ANSWER });
    const tools = new RecordingTools();
    const asked: string[] = [];
    const budget = (tool: 'search' | 'browse'): Promise<boolean> => {
      asked.push(tool);
      return Promise.resolve(tool === 'search');
    };

    const t = await runTrajectory(
      { questionId: 'q1', question: 'What is the tallest tower?', groundTruth: 'Tower Alpha' },
      0,
      settings,
      { policy: new ChatPolicy({ baseURL: server.baseURL, model: 'policy' }), tools, budget },
    );

    expect(asked).toEqual(['search', 'browse']);
    expect(tools.calls.map((c) => c.tool)).toEqual(['web_search']);
    expect(t.toolStats).toMatchObject({ searchCalls: 1, browseCalls: 0, refused: 1, failures: 0 });
    expect(t.messages[5]).toMatchObject({
      role: 'tool',
      content: expect.stringContaining('budget for browse_webpage is spent'),
    });
    expect(t.end).toEqual({ reason: 'answer' });
    expect(t.answer).toBe('Tower Alpha');
  });

  it('searches, browses and answers through a chat policy, and scores the answer', async () => {
    server = await startOpenAITestServer({ reply: (req) => [SEARCH, BROWSE, ANSWER][turnOf(req)] ?? ANSWER });
    const tools = new RecordingTools();
    const policy = new ChatPolicy({ baseURL: server.baseURL, model: 'policy' });
    const t = await runTrajectory(
      {
        questionId: 'q1',
        question: 'What is the tallest tower?',
        groundTruth: 'Tower Alpha<|answer_split|>Alpha',
      },
      3,
      settings,
      { policy, tools },
    );
    expect(t.id).toBe('q1#3');
    expect(t.end).toEqual({ reason: 'answer' });
    expect(t.answer).toBe('Tower Alpha');
    expect(t.scores).toEqual({ f1: 1, em: 1 });
    expect(t.messages.map((m) => m.role)).toEqual([
      'system',
      'user',
      'assistant',
      'tool',
      'assistant',
      'tool',
      'assistant',
    ]);
    expect(tools.calls.map((c) => [c.tool, c.args, c.ctx.trajectoryId])).toEqual([
      ['web_search', ['tallest tower'], 'q1#3'],
      ['browse_webpage', ['http://web.test/tower'], 'q1#3'],
    ]);
    expect(t.toolStats).toMatchObject({ searchCalls: 1, browseCalls: 1, queries: 1, urls: 1, failures: 0 });
    expect(t.turns).toHaveLength(3);
    // The server saw the stop strings and tool responses as <tool_response> user turns.
    expect(server.requests[0]?.body.stop).toEqual(['</tool_call>', '</answer>']);
    expect(server.requests[1]?.messages?.[3]).toEqual({
      role: 'user',
      content:
        '<tool_response>\n[1] Tower Alpha is the tallest\nURL: http://web.test/tower\n</tool_response>',
    });
    expect(server.requests[0]?.messages?.[0]?.content).toContain('Today is 2026-11-25');
    expect(t.responseText.startsWith(SEARCH)).toBe(true);
  });

  it('passes the search top-k setting to every web_search call it makes', async () => {
    server = await startOpenAITestServer({ reply: (req) => [SEARCH, ANSWER][turnOf(req)] ?? ANSWER });
    const tools = new RecordingTools();
    const policy = new ChatPolicy({ baseURL: server.baseURL, model: 'policy' });

    await runTrajectory(
      { questionId: 'q1', question: 'What is the tallest tower?' },
      0,
      {
        ...settings,
        searchTopK: 5,
      },
      { policy, tools },
    );

    expect(tools.calls.map((c) => [c.tool, c.ctx.searchTopK])).toEqual([['web_search', 5]]);
  });

  it('counts the search queries the cache answered, per call and per trajectory', async () => {
    server = await startOpenAITestServer({ reply: (req) => [SEARCH, SEARCH, ANSWER][turnOf(req)] ?? ANSWER });
    const tools = new RecordingTools();
    let call = 0;
    const cachedSecondTime: ToolRunner = {
      webSearch: async (queries, ctx) => {
        ctx.reportCached?.(call++ === 0 ? 0 : queries.length);
        return tools.webSearch(queries, ctx);
      },
      browse: (urls, ctx) => tools.browse(urls, ctx),
    };
    const policy = new ChatPolicy({ baseURL: server.baseURL, model: 'policy' });

    const t = await runTrajectory({ questionId: 'q1', question: 'What is the tallest tower?' }, 0, settings, {
      policy,
      tools: cachedSecondTime,
    });

    expect(t.turns.flatMap((turn) => (turn.tool === undefined ? [] : [turn.tool.cached]))).toEqual([0, 1]);
    expect(t.toolStats).toMatchObject({ queries: 2, cachedQueries: 1 });
    expect(describeCacheHits(toolCounts([t, t]))).toBe('2 of 4 search queries from the cache (50%)');
  });

  it('masks prompt, tool responses and template glue out of the loss, token by token', async () => {
    server = await startOpenAITestServer({ reply: (req) => [SEARCH, ANSWER][turnOf(req)] ?? ANSWER });
    const policy = new CompletionPolicy({ baseURL: server.baseURL, model: 'policy' });
    const t = await runTrajectory({ questionId: 'q', question: 'Tallest tower?' }, 0, settings, {
      policy,
      tools: new RecordingTools(),
      encoder: bytes,
    });
    expect(t.end.reason).toBe('answer');
    const ids = t.tokenIds ?? [];
    const mask = t.lossMask ?? [];
    expect(Buffer.from(ids).toString('utf8')).toBe(t.renderedText);
    expect(mask).toHaveLength(ids.length);
    // The trained tokens are exactly the two sampled turns; the tool response is never trained on.
    const trained = Buffer.from(ids.filter((_, i) => mask[i] === 1)).toString('utf8');
    expect(trained).toBe(SEARCH + ANSWER);
    const observed = Buffer.from(ids.filter((_, i) => mask[i] === 0)).toString('utf8');
    expect(observed).toContain('<tool_response>\n[1] Tower Alpha is the tallest');
    expect(observed.startsWith('<|im_start|>system\n')).toBe(true);
    expect(t.logprobs?.filter((lp, i) => mask[i] === 1).every((lp) => lp === -0.5)).toBe(true);
    expect(t.logprobs?.filter((lp, i) => mask[i] === 0).every((lp) => lp === null)).toBe(true);
    expect(t.promptTokens).toBe(Buffer.byteLength(t.renderedText.slice(0, t.renderedText.indexOf(SEARCH))));
    // The second request carried the first turn's prompt, its sampled tokens and the observation as ids.
    const second = server.requests[1]?.prompt as number[];
    expect(
      Buffer.from(second).toString('utf8').endsWith('</tool_response><|im_end|>\n<|im_start|>assistant\n'),
    ).toBe(true);
  });

  it('ends on a malformed turn and scores it -1', async () => {
    server = await startOpenAITestServer({
      reply: () =>
        '<think>hmm</think><tool_call>{"name": "web_search", "arguments": {"query": "not a list"}}</tool_call>',
    });
    const t = await runTrajectory({ questionId: 'q', question: 'Q?', groundTruth: 'x' }, 0, settings, {
      policy: new ChatPolicy({ baseURL: server.baseURL, model: 'p' }),
      tools: new RecordingTools(),
    });
    expect(t.end).toEqual({ reason: 'malformed', detail: 'bad_arguments' });
    expect(t.scores).toEqual({ f1: -1, em: -1 });
    expect(t.turns).toHaveLength(1);
  });

  it('ends a turn cut by the token limit as length, scored -1', async () => {
    server = await startOpenAITestServer({
      reply: () => `<think>${'very long reasoning '.repeat(40)}</think><answer>x</answer>`,
    });
    const t = await runTrajectory(
      { questionId: 'q', question: 'Q?', groundTruth: 'x' },
      0,
      { ...settings, maxTokensPerTurn: 64 },
      {
        policy: new ChatPolicy({ baseURL: server.baseURL, model: 'p' }),
        tools: new RecordingTools(),
      },
    );
    expect(t.end).toEqual({ reason: 'length', detail: 'unbalanced_tags' });
    expect(t.turns[0]?.finishReason).toBe('length');
    expect(t.scores).toEqual({ f1: -1, em: -1 });
  });

  it('stops after maxTurns without an answer', async () => {
    server = await startOpenAITestServer({ reply: () => SEARCH });
    const t = await runTrajectory(
      { questionId: 'q', question: 'Q?', groundTruth: 'x' },
      0,
      { ...settings, maxTurns: 3 },
      {
        policy: new ChatPolicy({ baseURL: server.baseURL, model: 'p' }),
        tools: new RecordingTools(),
      },
    );
    expect(t.end.reason).toBe('max_turns');
    expect(t.turns).toHaveLength(3);
    expect(t.scores).toEqual({ f1: -1, em: -1 });
  });

  it('keeps going when a tool call fails, with the failure as the observation', async () => {
    server = await startOpenAITestServer({ reply: (req) => [SEARCH, ANSWER][turnOf(req)] ?? ANSWER });
    const failing: ToolRunner = {
      webSearch: () => Promise.reject(new Error('search backend down')),
      browse: () => Promise.reject(new Error('unused')),
    };
    const t = await runTrajectory({ questionId: 'q', question: 'Q?' }, 0, settings, {
      policy: new ChatPolicy({ baseURL: server.baseURL, model: 'p' }),
      tools: failing,
    });
    expect(t.end.reason).toBe('answer');
    expect(t.toolStats.failures).toBe(1);
    expect(t.messages[3]?.content).toContain('search backend down');
  });

  it('lets trajectories advance independently, but holds them turn by turn with a barrier', async () => {
    server = await startOpenAITestServer({ reply: (req) => [SEARCH, ANSWER][turnOf(req)] ?? ANSWER });
    const policy = new ChatPolicy({ baseURL: server.baseURL, model: 'p' });
    const slowFor = (id: string): number => (id === 'slow#0' ? 300 : 0);
    const finishedOrder = async (barrier?: TurnBarrier): Promise<string[]> => {
      const order: string[] = [];
      const tools: ToolRunner = {
        webSearch: async (_q, ctx) => {
          await new Promise((r) => setTimeout(r, slowFor(ctx.trajectoryId)));
          return 'results';
        },
        browse: async () => 'page',
      };
      await Promise.all(
        ['slow', 'fast'].map(async (qid) => {
          const t = await runTrajectory({ questionId: qid, question: 'Q?' }, 0, settings, {
            policy,
            tools,
            ...(barrier === undefined ? {} : { barrier }),
          });
          order.push(t.id);
        }),
      );
      return order;
    };
    expect(await finishedOrder()).toEqual(['fast#0', 'slow#0']);
    // With the barrier the fast trajectory cannot generate its answer before the slow tool call returns.
    const started = performance.now();
    const order = await finishedOrder(new TurnBarrier(2));
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(order).toHaveLength(2);
    const answerRequests = server.requests.slice(-2).map((r) => r.messages?.length);
    expect(answerRequests).toEqual([4, 4]);
  });
});

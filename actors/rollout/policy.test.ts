import { afterEach, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../runtime/model/tokenizer.ts';
import { ChatPolicy } from './chat-policy.ts';
import { CompletionPolicy } from './completion-policy.ts';
import { startOpenAITestServer, type OpenAITestServer } from './openai-test-server.ts';
import { TURN_STOPS } from './policy.ts';
import { DEFAULT_ROLLOUT_SETTINGS, runTrajectory } from './run-trajectory.ts';

const sampling = { maxTokens: 256, temperature: 1, topP: 1, stop: TURN_STOPS };

describe('ChatPolicy', () => {
  let server: OpenAITestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('puts back the stop string a chat server drops', async () => {
    server = await startOpenAITestServer({ reply: () => '<think>t</think><answer>Paris</answer> trailing' });
    const gen = await new ChatPolicy({ baseURL: server.baseURL, model: 'm' }).generate(
      { messages: [{ role: 'user', content: 'q' }] },
      sampling,
    );
    expect(gen.text).toBe('<think>t</think><answer>Paris</answer>');
    expect(gen.finishReason).toBe('stop');
  });

  it('in native mode sends the tool schemas, turns tool_calls into <tool_call> text and answers them by id', async () => {
    server = await startOpenAITestServer({
      reply: () => ({
        text: '<think>look</think>',
        toolCalls: [{ name: 'web_search', arguments: '{"query":["x"]}' }],
      }),
    });
    const policy = new ChatPolicy({ baseURL: server.baseURL, model: 'm', tools: 'native' });
    const gen = await policy.generate({ messages: [{ role: 'user', content: 'q' }] }, sampling);
    expect(gen.text).toBe(
      '<think>look</think>\n<tool_call>\n{"name":"web_search","arguments":{"query":["x"]}}\n</tool_call>',
    );
    const tools = server.requests[0]?.body.tools as Array<{ function: { name: string } }>;
    expect(tools.map((t) => t.function.name)).toEqual(['web_search', 'browse_webpage']);

    await policy.generate(
      {
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: gen.text },
          { role: 'tool', content: 'results' },
        ],
      },
      sampling,
    );
    const sent = server.requests[1]?.body.messages as Array<Record<string, unknown>>;
    expect(sent[1]).toMatchObject({
      role: 'assistant',
      content: '<think>look</think>',
      tool_calls: [
        { id: 'call_1', type: 'function', function: { name: 'web_search', arguments: '{"query":["x"]}' } },
      ],
    });
    expect(sent[2]).toEqual({ role: 'tool', tool_call_id: 'call_1', content: 'results' });
  });

  it('fails with a typed error when the server keeps failing', async () => {
    server = await startOpenAITestServer({ reply: () => 'never' });
    server.failNext(500, 5);
    const policy = new ChatPolicy({ baseURL: server.baseURL, model: 'm', maxRetries: 1 });
    await expect(
      policy.generate({ messages: [{ role: 'user', content: 'q' }] }, sampling),
    ).rejects.toMatchObject({
      code: 'POLICY_REQUEST_FAILED',
    });
  });
});

describe('CompletionPolicy with the Qwen2.5 tokenizer', () => {
  let server: OpenAITestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('keeps the sampled token ids and trains only on them', async () => {
    const tokenizer = await loadTokenizer();
    const turns = [
      '<think>search</think>\n<tool_call>\n{"name": "web_search", "arguments": {"query": ["Eiffel tower height"]}}\n</tool_call>',
      '<think>found</think>\n<answer>330 m</answer>',
    ];
    server = await startOpenAITestServer({
      encode: (text) => tokenizer.encode(text),
      decode: (ids) => tokenizer.decode(ids),
      reply: (req) => {
        const prompt = Array.isArray(req.prompt) ? tokenizer.decode(req.prompt) : (req.prompt ?? '');
        return turns[prompt.split('<tool_response>').length - 2] ?? turns[1]!;
      },
    });
    const t = await runTrajectory(
      {
        questionId: 'q',
        question: 'How tall is the Eiffel tower?',
        groundTruth: '330 m<|answer_split|>330 metres',
      },
      0,
      { ...DEFAULT_ROLLOUT_SETTINGS, date: new Date('2026-11-25T00:00:00Z') },
      {
        policy: new CompletionPolicy({ baseURL: server.baseURL, model: 'qwen' }),
        tools: { webSearch: async () => 'The tower is 330 m tall.', browse: async () => '' },
        encoder: tokenizer,
      },
    );
    expect(t.scores).toEqual({ f1: 1, em: 1 });
    const ids = t.tokenIds ?? [];
    expect(tokenizer.decode(ids)).toBe(t.renderedText);
    const trained = ids.filter((_, i) => t.lossMask?.[i] === 1);
    expect(tokenizer.decode(trained)).toBe(turns.join(''));
    expect(ids.filter((_, i) => t.lossMask?.[i] === 0).length).toBe(ids.length - trained.length);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { Judge, parseVerdict } from './judge.ts';
import { startOpenAITestServer, type OpenAITestServer } from './openai-test-server.ts';

describe('parseVerdict', () => {
  it.each([
    ['{"rationale": "same city", "judgement": "correct"}', true],
    ['Sure! ```json\n{"rationale": "x", "Judgment": "Incorrect"}\n```', false],
    ['{"verdict": true}', true],
    ['{"rationale": "a {nested} mention"}\nThe answer is incorrect.', false],
    ['Correct.', true],
  ])('reads %j', (text, correct) => {
    expect(parseVerdict(text)?.correct).toBe(correct);
  });

  it('refuses to guess when the text says both or neither', () => {
    expect(parseVerdict('It could be correct or incorrect')).toBeNull();
    expect(parseVerdict('{"judgement": "maybe"}')).toBeNull();
    expect(parseVerdict('')).toBeNull();
  });
});

describe('Judge', () => {
  let server: OpenAITestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('sends question, references and prediction, and reads the verdict', async () => {
    server = await startOpenAITestServer({
      reply: () => '{"rationale": "NYC is New York City", "judgement": "correct"}',
    });
    const judge = new Judge({ baseURL: server.baseURL, model: 'judge' });
    const verdict = await judge.judge({
      question: 'Largest US city?',
      groundTruth: 'New York City<|answer_split|>NYC',
      prediction: 'NYC',
    });
    expect(verdict).toEqual({ correct: true, rationale: 'NYC is New York City', attempts: 1 });
    const prompt = server.requests[0]?.messages?.[0]?.content ?? '';
    expect(prompt).toContain('Largest US city?');
    expect(prompt).toContain('["New York City","NYC"]');
    expect(prompt).toContain('"NYC"');
  });

  it('asks again after an unreadable reply and after server errors', async () => {
    const replies = ['I think so', '{"judgement": "incorrect", "rationale": "different person"}'];
    server = await startOpenAITestServer({ reply: () => replies.shift() ?? 'nothing' });
    server.failNext(500, 1);
    const verdict = await new Judge({ baseURL: server.baseURL, model: 'judge' }).judge({
      question: 'q',
      groundTruth: 'a',
      prediction: 'b',
    });
    expect(verdict).toMatchObject({ correct: false, attempts: 2 });
    expect(server.requests).toHaveLength(2);
  });

  it('gives an unknown verdict after the last attempt instead of guessing', async () => {
    server = await startOpenAITestServer({ reply: () => 'no idea' });
    const verdict = await new Judge({ baseURL: server.baseURL, model: 'judge', attempts: 2 }).judge({
      question: 'q',
      groundTruth: 'a',
      prediction: 'b',
    });
    expect(verdict.correct).toBeNull();
    expect(verdict.error).toContain('unreadable verdict');
  });

  it('marks a missing prediction incorrect without asking', async () => {
    server = await startOpenAITestServer({ reply: () => '{"judgement": "correct"}' });
    const verdict = await new Judge({ baseURL: server.baseURL, model: 'judge' }).judge({
      question: 'q',
      groundTruth: 'a',
      prediction: undefined,
    });
    expect(verdict.correct).toBe(false);
    expect(server.requests).toHaveLength(0);
  });
});

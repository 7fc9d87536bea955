import { describe, expect, it } from 'vitest';
import { parseTurn } from './parser.ts';

describe('parseTurn', () => {
  it('reads a web_search call', () => {
    const turn = parseTurn(
      '<think>need the capital</think>\n<tool_call>\n{"name": "web_search", "arguments": {"query": ["capital of France"]}}\n</tool_call>',
    );
    expect(turn).toEqual({
      kind: 'tool_call',
      think: 'need the capital',
      call: { name: 'web_search', arguments: { query: ['capital of France'] } },
    });
  });

  it('reads a browse_webpage call and an answer, with upper-case tags', () => {
    expect(
      parseTurn(
        '<THINK>open it</THINK><TOOL_CALL>{"name":"browse_webpage","arguments":{"url_list":["http://a/b"]}}</TOOL_CALL>',
      ),
    ).toMatchObject({
      kind: 'tool_call',
      call: { name: 'browse_webpage', arguments: { url_list: ['http://a/b'] } },
    });
    expect(parseTurn('<think>done</think>\n<answer> Paris </answer>')).toEqual({
      kind: 'answer',
      think: 'done',
      answer: 'Paris',
    });
  });

  it('keeps at most 3 queries of a web_search call', () => {
    const turn = parseTurn(
      '<think>t</think><tool_call>{"name":"web_search","arguments":{"query":["a","b","c","d"]}}</tool_call>',
    );
    expect(turn).toMatchObject({ call: { arguments: { query: ['a', 'b', 'c'] } } });
  });

  it.each([
    ['no think', '<answer>x</answer>', 'missing_think'],
    ['think not first', 'hello <think>t</think><answer>x</answer>', 'missing_think'],
    ['no action', '<think>t</think> I will search now', 'missing_action'],
    ['unclosed tool call', '<think>t</think><tool_call>{"name":"web_search"', 'unbalanced_tags'],
    ['unclosed think', '<think>t<answer>x</answer>', 'unbalanced_tags'],
    ['two actions', '<think>t</think><tool_call>{}</tool_call><answer>x</answer>', 'multiple_actions'],
    ['bad JSON', '<think>t</think><tool_call>{name: web_search}</tool_call>', 'bad_json'],
    [
      'arguments not an object',
      '<think>t</think><tool_call>{"name":"web_search","arguments":"x"}</tool_call>',
      'bad_json',
    ],
    [
      'unknown tool',
      '<think>t</think><tool_call>{"name":"python","arguments":{}}</tool_call>',
      'unknown_tool',
    ],
    [
      'query as a string',
      '<think>t</think><tool_call>{"name":"web_search","arguments":{"query":"x"}}</tool_call>',
      'bad_arguments',
    ],
    [
      'empty url list',
      '<think>t</think><tool_call>{"name":"browse_webpage","arguments":{"url_list":[]}}</tool_call>',
      'bad_arguments',
    ],
    [
      'number in url list',
      '<think>t</think><tool_call>{"name":"browse_webpage","arguments":{"url_list":[3]}}</tool_call>',
      'bad_arguments',
    ],
  ])('rejects a turn with %s', (_name, text, reason) => {
    expect(parseTurn(text)).toMatchObject({ kind: 'malformed', reason });
  });
});

/**
 * The agent's system prompt and tool definitions. Written for this project: it states the date, the two
 * tools with their JSON schemas and the turn format the parser (parser.ts) and the reward (reward.ts) expect.
 */

/** An OpenAI-style function tool, as chat completions and the Qwen2.5 chat template take it. */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export const WEB_SEARCH = 'web_search';
export const BROWSE_WEBPAGE = 'browse_webpage';

export const TOOL_DEFINITIONS: readonly ToolDefinition[] = [
  {
    type: 'function',
    function: {
      name: WEB_SEARCH,
      description:
        'Search the web. Returns the top results (title, URL, snippet) for each query. Up to 3 queries per call.',
      parameters: {
        type: 'object',
        properties: {
          query: {
            type: 'array',
            items: { type: 'string' },
            description: 'One to three search queries, each a short keyword phrase.',
          },
        },
        required: ['query'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: BROWSE_WEBPAGE,
      description:
        'Open web pages and read them for the question. Returns only new information relevant to the question.',
      parameters: {
        type: 'object',
        properties: {
          url_list: {
            type: 'array',
            items: { type: 'string' },
            description: 'The URLs to read, taken from earlier search results.',
          },
        },
        required: ['url_list'],
      },
    },
  },
];

/** `date` is written as YYYY-MM-DD so answers about "now" are anchored to the run, not to training data. */
export function buildSystemPrompt(date: Date): string {
  const day = date.toISOString().slice(0, 10);
  const tools = TOOL_DEFINITIONS.map((t) => JSON.stringify(t.function)).join('\n');
  return [
    `You are a research agent. Today is ${day}. You answer questions by searching the web and reading pages.`,
    '',
    'Tools (JSON schemas):',
    tools,
    '',
    'Every reply has two parts, in this order:',
    '1. Your reasoning inside <think>...</think>: what you know, what is missing, what to do next.',
    '2. Exactly one of:',
    '   - one tool call: <tool_call>{"name": "web_search", "arguments": {"query": ["..."]}}</tool_call>',
    '     or <tool_call>{"name": "browse_webpage", "arguments": {"url_list": ["https://..."]}}</tool_call>',
    '   - or your final answer: <answer>...</answer>',
    '',
    'After a tool call, its result comes back inside <tool_response>...</tool_response>; then reply again.',
    'Check facts against more than one source when you can. Answer once you are confident.',
    'The answer is a short phrase (a name, a date, a number), not a sentence. For a yes-or-no question,',
    'answer "yes" or "no".',
  ].join('\n');
}

export interface Message {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
}

/** The conversation a trajectory starts from. */
export function initialMessages(question: string, date: Date): Message[] {
  return [
    { role: 'system', content: buildSystemPrompt(date) },
    { role: 'user', content: question },
  ];
}

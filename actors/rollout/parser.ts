/**
 * Parses one model turn: `<think>...</think>` followed by exactly one `<tool_call>{json}</tool_call>` or one
 * `<answer>...</answer>`. Anything else is malformed; the rollout loop ends the trajectory on it, and the
 * reward (which applies its own, older check to the whole solution) scores it -1 through the failing format
 * or the missing answer. Tags are matched case-insensitively, as the reward lowercases before checking them.
 */
import { z } from 'zod';
import { MAX_URLS_PER_CALL } from '../browse/protocol.ts';
import { MAX_QUERIES_PER_CALL } from '../search/protocol.ts';
import { BROWSE_WEBPAGE, WEB_SEARCH } from './prompt.ts';
import { tagsBalanced } from './reward.ts';

export type ToolCallRequest =
  | { name: typeof WEB_SEARCH; arguments: { query: string[] } }
  | { name: typeof BROWSE_WEBPAGE; arguments: { url_list: string[] } };

export type MalformedReason =
  | 'missing_think'
  | 'missing_action'
  | 'multiple_actions'
  | 'unbalanced_tags'
  | 'bad_json'
  | 'unknown_tool'
  | 'bad_arguments';

export type ParsedTurn =
  | { kind: 'answer'; think: string; answer: string }
  | { kind: 'tool_call'; think: string; call: ToolCallRequest }
  | { kind: 'malformed'; reason: MalformedReason; message: string };

const THINK = /^\s*<think>([\s\S]*?)<\/think>/i;
const TOOL_CALL = /<tool_call>([\s\S]*?)<\/tool_call>/gi;
const ANSWER = /<answer>([\s\S]*?)<\/answer>/gi;

const nonEmptyStrings = z.array(z.string().trim().min(1)).min(1);
const callShape = z.object({ name: z.string(), arguments: z.record(z.string(), z.unknown()) });
const webSearchArgs = z.object({ query: nonEmptyStrings });
const browseArgs = z.object({ url_list: nonEmptyStrings });

function malformed(reason: MalformedReason, message: string): ParsedTurn {
  return { kind: 'malformed', reason, message };
}

function parseToolCall(body: string): ToolCallRequest | ParsedTurn {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    return malformed('bad_json', `tool call is not valid JSON: ${(err as Error).message}`);
  }
  const shape = callShape.safeParse(json);
  if (!shape.success) return malformed('bad_json', 'tool call must be {"name": string, "arguments": object}');
  const { name, arguments: args } = shape.data;
  if (name === WEB_SEARCH) {
    const parsed = webSearchArgs.safeParse(args);
    if (!parsed.success)
      return malformed('bad_arguments', 'web_search needs "query": a list of non-empty strings');
    // The original keeps the first few queries of an over-long call rather than failing the turn.
    return { name, arguments: { query: parsed.data.query.slice(0, MAX_QUERIES_PER_CALL) } };
  }
  if (name === BROWSE_WEBPAGE) {
    const parsed = browseArgs.safeParse(args);
    if (!parsed.success) return malformed('bad_arguments', 'browse_webpage needs "url_list": a list of URLs');
    return { name, arguments: { url_list: parsed.data.url_list.slice(0, MAX_URLS_PER_CALL) } };
  }
  return malformed(
    'unknown_tool',
    `unknown tool "${name}"; the tools are ${WEB_SEARCH} and ${BROWSE_WEBPAGE}`,
  );
}

export function parseTurn(text: string): ParsedTurn {
  if (!tagsBalanced(text.toLowerCase()))
    return malformed('unbalanced_tags', 'a think/tool_call/answer tag is not closed');
  const think = THINK.exec(text);
  if (think === null) return malformed('missing_think', 'the turn must start with <think>...</think>');
  const rest = text.slice(think[0].length);
  const calls = [...rest.matchAll(TOOL_CALL)];
  const answers = [...rest.matchAll(ANSWER)];
  if (calls.length + answers.length === 0) {
    return malformed('missing_action', 'after </think> comes one <tool_call> or one <answer>');
  }
  if (calls.length + answers.length > 1) {
    return malformed('multiple_actions', 'a turn holds exactly one <tool_call> or one <answer>');
  }
  const thought = (think[1] ?? '').trim();
  const answer = answers[0];
  if (answer !== undefined) return { kind: 'answer', think: thought, answer: (answer[1] ?? '').trim() };
  const call = parseToolCall((calls[0]?.[1] ?? '').trim());
  if ('kind' in call) return call;
  return { kind: 'tool_call', think: thought, call };
}

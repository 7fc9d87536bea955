/**
 * A policy served by any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, llama.cpp's server,
 * hosted APIs). In `text` tool mode the model writes `<tool_call>` JSON in its reply and tool results go back
 * as `<tool_response>` user turns, exactly as the Qwen2.5 chat template renders them; in `native` mode the
 * tool definitions are sent and the server's `tool_calls` are turned into the same `<tool_call>` text, so the
 * parser and the reward see one format whatever the backend.
 */
import OpenAI from 'openai';
import type {
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import { DrError } from '../../config/errors.ts';
import { TOOL_DEFINITIONS, type Message } from './prompt.ts';
import {
  describeError,
  restoreStop,
  type Generation,
  type Policy,
  type PolicyInput,
  type SamplingOptions,
} from './policy.ts';

export interface ChatPolicyOptions {
  baseURL: string;
  model: string;
  apiKey?: string;
  tools?: 'text' | 'native';
  /** Retries of the openai client on 429/5xx/timeouts. */
  maxRetries?: number;
  timeoutMs?: number;
  weightVersion?: () => number;
}

const TOOL_CALL_BLOCK = /<tool_call>([\s\S]*?)<\/tool_call>/i;

function toolResponse(content: string): string {
  return `<tool_response>\n${content}\n</tool_response>`;
}

function textMessages(messages: readonly Message[]): ChatCompletionMessageParam[] {
  return messages.map((m) =>
    m.role === 'tool'
      ? { role: 'user', content: toolResponse(m.content) }
      : { role: m.role, content: m.content },
  );
}

/** Native mode: an assistant turn's `<tool_call>` becomes a structured call with an id derived from its
 * position, and the tool turn after it answers that id. */
function nativeMessages(messages: readonly Message[]): ChatCompletionMessageParam[] {
  const out: ChatCompletionMessageParam[] = [];
  messages.forEach((m, i) => {
    const block = m.role === 'assistant' ? TOOL_CALL_BLOCK.exec(m.content) : null;
    if (block !== null) {
      let call: { name?: unknown; arguments?: unknown } = {};
      try {
        call = JSON.parse(block[1] ?? '') as typeof call;
      } catch {
        out.push({ role: 'assistant', content: m.content });
        return;
      }
      out.push({
        role: 'assistant',
        content: m.content.replace(TOOL_CALL_BLOCK, '').trim(),
        tool_calls: [
          {
            id: `call_${i}`,
            type: 'function',
            function: { name: String(call.name), arguments: JSON.stringify(call.arguments ?? {}) },
          },
        ],
      });
    } else if (m.role === 'tool') {
      out.push({ role: 'tool', tool_call_id: `call_${i - 1}`, content: m.content });
    } else {
      out.push({ role: m.role, content: m.content });
    }
  });
  return out;
}

function asToolCallText(name: string, args: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(args);
  } catch {
    // Keep the broken arguments verbatim: the parser reports bad JSON and the turn scores as malformed.
    return `<tool_call>\n{"name": ${JSON.stringify(name)}, "arguments": ${args}}\n</tool_call>`;
  }
  return `<tool_call>\n${JSON.stringify({ name, arguments: parsed })}\n</tool_call>`;
}

export class ChatPolicy implements Policy {
  readonly mode = 'chat' as const;
  private readonly client: OpenAI;

  constructor(private readonly options: ChatPolicyOptions) {
    this.client = new OpenAI({
      baseURL: options.baseURL,
      apiKey: options.apiKey ?? 'not-needed',
      maxRetries: options.maxRetries ?? 3,
      timeout: options.timeoutMs ?? 600_000,
    });
  }

  async generate(input: PolicyInput, sampling: SamplingOptions): Promise<Generation> {
    const native = this.options.tools === 'native';
    const params: ChatCompletionCreateParamsNonStreaming = {
      model: this.options.model,
      messages: native ? nativeMessages(input.messages) : textMessages(input.messages),
      max_tokens: sampling.maxTokens,
      temperature: sampling.temperature,
      top_p: sampling.topP,
      stop: [...sampling.stop],
      ...(native ? { tools: TOOL_DEFINITIONS.map((t) => ({ type: t.type, function: t.function })) } : {}),
    };
    let completion;
    try {
      completion = await this.client.chat.completions.create(params, { signal: sampling.signal });
    } catch (cause) {
      throw new DrError(
        'POLICY_REQUEST_FAILED',
        `chat policy at ${this.options.baseURL} failed: ${describeError(cause)}`,
        {
          cause,
        },
      );
    }
    const choice = completion.choices[0];
    if (choice === undefined) {
      throw new DrError('POLICY_BAD_RESPONSE', `chat policy at ${this.options.baseURL} returned no choices`);
    }
    let text = choice.message.content ?? '';
    const calls = choice.message.tool_calls ?? [];
    const first = calls[0];
    if (first !== undefined && first.type === 'function') {
      text = `${text.trim()}\n${asToolCallText(first.function.name, first.function.arguments)}`;
    } else {
      text += restoreStop(text);
    }
    return {
      text,
      finishReason: choice.finish_reason === 'length' ? 'length' : 'stop',
      ...(this.options.weightVersion === undefined ? {} : { weightVersion: this.options.weightVersion() }),
    };
  }
}

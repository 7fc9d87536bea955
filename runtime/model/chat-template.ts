/**
 * Renders a Hugging Face chat template (a Jinja string from tokenizer_config.json) the way transformers'
 * `apply_chat_template(..., tokenize=False)` does: messages, tool definitions and the generation prompt go in,
 * the exact prompt text comes out. @huggingface/jinja applies transformers' `trim_blocks`/`lstrip_blocks` and a
 * `tojson` with Python's `json.dumps` separators, which is what makes the output byte-for-byte equal.
 */
import { Template } from '@huggingface/jinja';
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';

/** A function call as the model writes it inside `<tool_call>`. */
export interface ToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string; tool_calls?: ToolCall[] }
  | { role: 'tool'; content: string };

/** An OpenAI-style tool definition; the template prints it as one JSON line inside `<tools>`. */
export interface ChatTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface RenderOptions {
  tools?: readonly ChatTool[];
  /** Append the opening of an assistant turn (`<|im_start|>assistant\n`) for the model to continue. */
  addGenerationPrompt?: boolean;
}

const toolCallSchema = z.object({ name: z.string().min(1), arguments: z.record(z.string(), z.unknown()) });
const messageSchema = z.discriminatedUnion('role', [
  z.object({ role: z.enum(['system', 'user']), content: z.string() }),
  z.object({
    role: z.literal('assistant'),
    content: z.string(),
    tool_calls: z.array(toolCallSchema).optional(),
  }),
  z.object({ role: z.literal('tool'), content: z.string() }),
]);
const toolSchema = z.object({
  type: z.literal('function'),
  function: z.looseObject({ name: z.string().min(1) }),
});

export class ChatTemplate {
  private readonly template: Template;

  /** `specialTokens` are the names transformers passes to every template (bos_token, eos_token, ...). */
  constructor(
    readonly source: string,
    private readonly specialTokens: Readonly<Record<string, string>> = {},
  ) {
    try {
      this.template = new Template(source);
    } catch (cause) {
      throw new DrError('MODEL_CHAT_TEMPLATE_INVALID', `chat template does not parse: ${String(cause)}`, {
        cause,
      });
    }
  }

  render(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    const parsedMessages = z.array(messageSchema).min(1).safeParse(messages);
    if (!parsedMessages.success) {
      throw new DrError(
        'MODEL_CHAT_MESSAGES_INVALID',
        `chat messages are malformed (${z.prettifyError(parsedMessages.error)}); ` +
          'each needs a role (system, user, assistant, tool) and string content; tool_calls are {name, arguments}',
      );
    }
    const tools = options.tools === undefined || options.tools.length === 0 ? undefined : options.tools;
    if (tools !== undefined) {
      const parsedTools = z.array(toolSchema).safeParse(tools);
      if (!parsedTools.success) {
        throw new DrError(
          'MODEL_CHAT_TOOLS_INVALID',
          `tool definitions are malformed (${z.prettifyError(parsedTools.error)}); use {type: 'function', function: {name, ...}}`,
        );
      }
    }
    try {
      return this.template.render({
        ...this.specialTokens,
        messages,
        tools,
        add_generation_prompt: options.addGenerationPrompt === true,
      });
    } catch (cause) {
      throw new DrError('MODEL_CHAT_TEMPLATE_FAILED', `chat template failed to render: ${String(cause)}`, {
        cause,
      });
    }
  }
}

/**
 * Qwen2.5's chat format for the message shapes a trajectory has (system, user, assistant text, one tool
 * result per turn), without tool definitions in the template because the system prompt already lists them.
 * For these shapes it renders byte for byte what Qwen2.5's Jinja template renders with `tools=None`; it is
 * the default renderer, and runtime/model's ChatTemplate can be passed instead.
 */
import type { Message } from './prompt.ts';
import type { PromptRenderer } from './policy.ts';

function turn(role: string, content: string): string {
  return `<|im_start|>${role}\n${content}<|im_end|>\n`;
}

export const chatMlRenderer: PromptRenderer = {
  render(messages: readonly Message[], options = {}): string {
    let out = '';
    for (const m of messages) {
      out +=
        m.role === 'tool'
          ? turn('user', `<tool_response>\n${m.content}\n</tool_response>`)
          : turn(m.role, m.content);
    }
    if (options.addGenerationPrompt === true) out += '<|im_start|>assistant\n';
    return out;
  },
};

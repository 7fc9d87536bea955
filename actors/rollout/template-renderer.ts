/**
 * The renderer of a policy's prompts: the checkpoint's own chat template (tokenizer_config.json's
 * `chat_template`, rendered as transformers' `apply_chat_template` renders it), so a trajectory is the text
 * the model was trained to read; ChatML (chatml.ts) only for a tokenizer without a template.
 */
import type { ChatTemplate } from '../../runtime/model/chat-template.ts';
import { chatMlRenderer } from './chatml.ts';
import type { PromptRenderer } from './policy.ts';

export function rendererOf(tokenizer: { readonly chatTemplate: ChatTemplate | undefined }): PromptRenderer {
  const template = tokenizer.chatTemplate;
  if (template === undefined) return chatMlRenderer;
  return {
    render: (messages, options = {}) =>
      template.render(messages, {
        ...(options.addGenerationPrompt === undefined
          ? {}
          : { addGenerationPrompt: options.addGenerationPrompt }),
      }),
  };
}

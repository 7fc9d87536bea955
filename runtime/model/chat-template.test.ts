import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isDrError } from '../../config/errors.ts';
import type { ChatMessage, ChatTool } from './chat-template.ts';
import { loadTokenizer, QWEN25_TOKENIZER_DIR, type TextTokenizer } from './tokenizer.ts';

interface Case {
  name: string;
  messages: ChatMessage[];
  useTools: boolean;
  addGenerationPrompt: boolean;
}
const fixtures = new URL('./fixtures/', import.meta.url);
const spec = JSON.parse(readFileSync(new URL('chat-cases.json', fixtures), 'utf8')) as {
  tools: ChatTool[];
  cases: Case[];
};
// Rendered by scripts/chat-template-fixtures.py (transformers' apply_chat_template where it is installed).
const expected = JSON.parse(readFileSync(new URL('chat-expected.json', fixtures), 'utf8')) as {
  cases: Record<string, { text: string; ids?: number[] }>;
};

let tokenizer: TextTokenizer;
beforeAll(async () => {
  tokenizer = await loadTokenizer();
});

describe('Qwen2.5 chat template', () => {
  it.each(spec.cases.map((c) => [c.name, c] as const))('renders "%s" exactly as the reference', (name, c) => {
    const text = tokenizer.renderChat(c.messages, {
      tools: c.useTools ? spec.tools : undefined,
      addGenerationPrompt: c.addGenerationPrompt,
    });
    expect(text).toBe(expected.cases[name]?.text);
  });

  // Token ids are in the fixture when transformers' Rust tokenizer produced it (the GPU machine).
  const withIds = spec.cases.flatMap((c) => {
    const entry = expected.cases[c.name];
    return entry?.ids === undefined ? [] : [[c.name, entry.text, entry.ids] as const];
  });
  it.skipIf(withIds.length === 0).each(withIds)('tokenizes "%s" to the reference ids', (_name, text, ids) => {
    expect(tokenizer.encode(text)).toEqual(ids);
  });

  it('puts tool calls, tool responses and the generation prompt where the model reads them', () => {
    const text = tokenizer.renderChat(
      [
        { role: 'user', content: 'Q' },
        {
          role: 'assistant',
          content: '<think>t</think>',
          tool_calls: [{ name: 'web_search', arguments: { query: ['q'] } }],
        },
        { role: 'tool', content: 'R' },
      ],
      { tools: spec.tools, addGenerationPrompt: true },
    );
    expect(text).toContain(
      '<|im_start|>assistant\n<think>t</think>\n<tool_call>\n{"name": "web_search", "arguments": {"query": ["q"]}}\n</tool_call><|im_end|>\n',
    );
    expect(text).toContain('<|im_start|>user\n<tool_response>\nR\n</tool_response><|im_end|>\n');
    expect(text.endsWith('<|im_start|>assistant\n')).toBe(true);
  });

  it('refuses a message without string content', () => {
    const bad = [{ role: 'user', content: 42 }] as unknown as ChatMessage[];
    expect(() => tokenizer.renderChat(bad)).toThrow(
      expect.objectContaining({ code: 'MODEL_CHAT_MESSAGES_INVALID' }),
    );
  });

  it('refuses a tool call without a name', () => {
    const bad = [
      { role: 'assistant', content: '', tool_calls: [{ arguments: {} }] },
    ] as unknown as ChatMessage[];
    expect(() => tokenizer.renderChat(bad)).toThrow(
      expect.objectContaining({ code: 'MODEL_CHAT_MESSAGES_INVALID' }),
    );
  });
});

describe('Qwen2.5 tokenizer', () => {
  it('knows the Qwen2.5 vocabulary and special tokens', () => {
    expect(tokenizer.vocabSize).toBe(151665);
    expect(tokenizer.eosTokenId).toBe(tokenizer.tokenToId('<|im_end|>'));
    expect(tokenizer.padTokenId).toBe(tokenizer.tokenToId('<|endoftext|>'));
    expect(tokenizer.specialTokenIds.has(tokenizer.eosTokenId)).toBe(true);
  });

  it('reads special tokens written in text as single tokens and round-trips text', () => {
    const text = '<|im_start|>user\nZürich café ☕ 東京<|im_end|>\n';
    const ids = tokenizer.encode(text);
    expect(ids[0]).toBe(tokenizer.tokenToId('<|im_start|>'));
    expect(ids.at(-2)).toBe(tokenizer.eosTokenId);
    expect(tokenizer.decode(ids)).toBe(text);
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe('user\nZürich café ☕ 東京\n');
  });

  it('refuses a folder without tokenizer files with a typed error naming the file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tok-'));
    try {
      await expect(loadTokenizer(dir)).rejects.toSatisfy(
        (e: unknown) => isDrError(e, 'MODEL_TOKENIZER_INVALID') && e.message.includes('tokenizer.json'),
      );
      await copyFile(path.join(QWEN25_TOKENIZER_DIR, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
      await writeFile(path.join(dir, 'tokenizer_config.json'), '{"eos_token": "<|not-a-token|>"}');
      await expect(loadTokenizer(dir)).rejects.toSatisfy(
        (e: unknown) => isDrError(e, 'MODEL_TOKENIZER_INVALID') && e.message.includes('eos_token'),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_CONFIG, EMBEDDED_VOCAB_SIZE, writeEmbeddedTokenizer } from './embedded.ts';
import { reduceVocabulary } from './reduced-vocab.ts';
import { loadTokenizer, type TextTokenizer } from './tokenizer.ts';

let dir: string;
let small: TextTokenizer;
let full: TextTokenizer;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vocab-'));
  await writeEmbeddedTokenizer(dir);
  [small, full] = await Promise.all([loadTokenizer(dir), loadTokenizer()]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('reduced Qwen2.5 vocabulary of the embedded policy', () => {
  const text =
    'Zürich: the Velmora bridge opened in 1931 ☕ <think>search</think>\n<tool_call>{"name": "web_search"}</tool_call>';

  it('has 8,192 tokens with the special tokens renumbered right after the kept merges', () => {
    expect(small.vocabSize).toBe(EMBEDDED_VOCAB_SIZE);
    expect(small.tokenToId('<|endoftext|>')).toBe(8170);
    expect(small.eosTokenId).toBe(small.tokenToId('<|im_end|>'));
    expect(EMBEDDED_CONFIG.eosTokenIds).toEqual([
      small.tokenToId('<|im_end|>'),
      small.tokenToId('<|endoftext|>'),
    ]);
  });

  it('round-trips any text with ids below the vocabulary size, keeping Qwen2.5 ids for kept tokens', () => {
    const ids = small.encode(text);
    expect(ids.every((id) => id < EMBEDDED_VOCAB_SIZE)).toBe(true);
    expect(small.decode(ids)).toBe(text);
    const firstAdded = small.tokenToId('<|endoftext|>')!;
    for (const id of ids) {
      if (id >= firstAdded) continue; // added tokens (<tool_call> too) are renumbered
      expect(full.idToToken(id)).toBe(small.idToToken(id));
    }
    expect(ids.length).toBeGreaterThanOrEqual(full.encode(text).length);
  });

  it('renders the same chat template as Qwen2.5', () => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    expect(small.renderChat(messages, { addGenerationPrompt: true })).toBe(
      full.renderChat(messages, { addGenerationPrompt: true }),
    );
  });

  it('refuses a size that the merges cannot give', () => {
    const tok = { model: { type: 'BPE', vocab: { a: 0 }, merges: [] }, added_tokens: [] };
    expect(() => reduceVocabulary(tok, {}, 300)).toThrow(
      expect.objectContaining({ code: 'MODEL_TOKENIZER_INVALID' }),
    );
  });
});

/**
 * The embedded policy: a small Qwen2-architecture model that ships with the project so the main job runs
 * offline on CPU. Its vocabulary is Qwen2.5's cut to 8,192 tokens (reduced-vocab.ts), its architecture is
 * the config below, and its weights come from scripts/train-embedded-policy.ts (see embedded/README.md).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseQwen2Config, type Qwen2Config } from './qwen2-config.ts';
import { reduceVocabulary } from './reduced-vocab.ts';
import { QWEN25_TOKENIZER_DIR } from './tokenizer.ts';

export const EMBEDDED_DIR = fileURLToPath(new URL('./embedded/', import.meta.url));

export const EMBEDDED_VOCAB_SIZE = 8192;

/** ~1.8M parameters: 4 layers, hidden 128, 4 query heads sharing 2 key/value heads, tied embeddings. */
export const EMBEDDED_CONFIG: Qwen2Config = parseQwen2Config({
  model_type: 'qwen2',
  vocab_size: EMBEDDED_VOCAB_SIZE,
  hidden_size: 128,
  intermediate_size: 384,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 4096,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  // <|im_end|> and <|endoftext|> after the cut (see writeEmbeddedTokenizer).
  eos_token_id: [8172, 8170],
});

/** Writes the reduced-vocabulary tokenizer.json and tokenizer_config.json into `dir`. */
export async function writeEmbeddedTokenizer(dir: string = EMBEDDED_DIR): Promise<void> {
  const read = async (name: string) =>
    JSON.parse(await readFile(path.join(QWEN25_TOKENIZER_DIR, name), 'utf8'));
  const { tokenizer, config } = reduceVocabulary(
    await read('tokenizer.json'),
    await read('tokenizer_config.json'),
    EMBEDDED_VOCAB_SIZE,
  );
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
}

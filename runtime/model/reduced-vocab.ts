/**
 * A smaller vocabulary cut from a byte-level BPE tokenizer (Qwen2.5's) by keeping its first merges: the 256
 * byte symbols, the results of the first K merges (which, in Qwen2.5, are exactly ids 256..255+K, in merge
 * order) and the added special tokens, renumbered right after them. Every kept token keeps its Qwen2.5 id
 * and string, the pre-tokenizer and chat template are unchanged, and any text still tokenizes (into more,
 * shorter pieces). The embedded policy uses it so its LM head is 8k rows, not 152k.
 */
import { DrError } from '../../config/errors.ts';

interface AddedToken {
  id: number;
  content: string;
  [key: string]: unknown;
}

interface TokenizerJson {
  model: {
    type: string;
    vocab: Record<string, number>;
    merges: (string | [string, string])[];
    [key: string]: unknown;
  };
  added_tokens: AddedToken[];
  [key: string]: unknown;
}

interface TokenizerConfigJson {
  added_tokens_decoder?: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

/** Returns tokenizer.json and tokenizer_config.json contents with `vocabSize` tokens in all. */
export function reduceVocabulary(
  tokenizer: TokenizerJson,
  config: TokenizerConfigJson,
  vocabSize: number,
): { tokenizer: TokenizerJson; config: TokenizerConfigJson } {
  const added = [...tokenizer.added_tokens].sort((a, b) => a.id - b.id);
  const merges = vocabSize - 256 - added.length;
  if (tokenizer.model.type !== 'BPE' || merges < 0 || merges > tokenizer.model.merges.length) {
    throw new DrError(
      'MODEL_TOKENIZER_INVALID',
      `cannot cut a ${vocabSize}-token vocabulary from this tokenizer (BPE with 256 byte symbols, ${added.length} added tokens, ${tokenizer.model.merges.length} merges needed)`,
    );
  }
  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(tokenizer.model.vocab)) byId.set(id, token);
  const vocab: Record<string, number> = {};
  for (let id = 0; id < 256 + merges; id++) {
    const token = byId.get(id);
    if (token === undefined)
      throw new DrError('MODEL_TOKENIZER_INVALID', `the tokenizer has no token with id ${id}`);
    vocab[token] = id;
  }
  const kept = tokenizer.model.merges.slice(0, merges);
  for (const merge of kept) {
    const [a, b] = typeof merge === 'string' ? (merge.split(' ') as [string, string]) : merge;
    if (vocab[a] === undefined || vocab[b] === undefined || vocab[a + b] === undefined) {
      throw new DrError(
        'MODEL_TOKENIZER_INVALID',
        `merge "${a} ${b}" is not closed over the first ${merges} merges`,
      );
    }
  }
  const remap = new Map(added.map((t, i) => [t.id, 256 + merges + i]));
  const decoder: Record<string, Record<string, unknown>> = {};
  for (const [id, entry] of Object.entries(config.added_tokens_decoder ?? {})) {
    const to = remap.get(Number(id));
    if (to !== undefined) decoder[String(to)] = entry;
  }
  return {
    tokenizer: {
      ...tokenizer,
      added_tokens: added.map((t) => ({ ...t, id: remap.get(t.id)! })),
      model: { ...tokenizer.model, vocab, merges: kept },
    },
    config: { ...config, added_tokens_decoder: decoder },
  };
}

/**
 * A Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json) loaded with @huggingface/tokenizers,
 * together with its chat template. Token ids are plain numbers; special tokens written in text (e.g.
 * `<|im_start|>`) are recognised as such, as in transformers.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import { ChatTemplate, type ChatMessage, type RenderOptions } from './chat-template.ts';

/** The Qwen2.5 vocabulary and chat template shipped with the project. */
export const QWEN25_TOKENIZER_DIR = fileURLToPath(new URL('./tokenizers/qwen2.5/', import.meta.url));

const addedTokenSchema = z.object({
  id: z.number().int().nonnegative(),
  content: z.string(),
  special: z.boolean(),
});
const tokenizerJsonSchema = z.looseObject({
  model: z.looseObject({ type: z.string(), vocab: z.record(z.string(), z.number().int().nonnegative()) }),
  added_tokens: z.array(z.looseObject(addedTokenSchema.shape)),
});
const tokenizerConfigSchema = z.looseObject({
  chat_template: z.string().optional(),
  eos_token: z.string().nullish(),
  pad_token: z.string().nullish(),
  bos_token: z.string().nullish(),
});

export class TextTokenizer {
  /** One more than the largest token id (the model's vocab_size may be larger: padded rows). */
  readonly vocabSize: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  /** Ids of all special (added) tokens, e.g. <|im_end|> and <|endoftext|>. */
  readonly specialTokenIds: ReadonlySet<number>;

  constructor(
    private readonly tokenizer: Tokenizer,
    readonly chatTemplate: ChatTemplate | undefined,
    info: { vocabSize: number; eosTokenId: number; padTokenId: number; specialTokenIds: ReadonlySet<number> },
  ) {
    this.vocabSize = info.vocabSize;
    this.eosTokenId = info.eosTokenId;
    this.padTokenId = info.padTokenId;
    this.specialTokenIds = info.specialTokenIds;
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens === true });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /** The prompt text transformers' `apply_chat_template(messages, tools=..., tokenize=False)` produces. */
  renderChat(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    if (this.chatTemplate === undefined) {
      throw new DrError(
        'MODEL_CHAT_TEMPLATE_MISSING',
        'this tokenizer has no chat_template in tokenizer_config.json',
      );
    }
    return this.chatTemplate.render(messages, options);
  }

  encodeChat(messages: readonly ChatMessage[], options: RenderOptions = {}): number[] {
    return this.encode(this.renderChat(messages, options));
  }
}

/** Loads `dir/tokenizer.json` and `dir/tokenizer_config.json`; anything missing or malformed is a DrError. */
export async function loadTokenizer(dir: string = QWEN25_TOKENIZER_DIR): Promise<TextTokenizer> {
  const tokenizerJson = await readJson(dir, 'tokenizer.json', tokenizerJsonSchema);
  const config = await readJson(dir, 'tokenizer_config.json', tokenizerConfigSchema);
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, config);
  } catch (cause) {
    throw new DrError(
      'MODEL_TOKENIZER_INVALID',
      `${path.join(dir, 'tokenizer.json')} is not a usable tokenizer: ${String(cause)}`,
      {
        cause,
      },
    );
  }
  let maxId = -1;
  for (const id of Object.values(tokenizerJson.model.vocab)) maxId = Math.max(maxId, id);
  for (const token of tokenizerJson.added_tokens) maxId = Math.max(maxId, token.id);
  const idOf = (token: string | null | undefined, field: string): number => {
    const id = token == null ? undefined : tokenizer.token_to_id(token);
    if (id === undefined) {
      throw new DrError(
        'MODEL_TOKENIZER_INVALID',
        `${field} ${JSON.stringify(token)} of ${dir} is not in the vocabulary`,
      );
    }
    return id;
  };
  const eosTokenId = idOf(config.eos_token, 'eos_token');
  const specialTokens: Record<string, string> = {};
  for (const field of ['bos_token', 'eos_token', 'pad_token'] as const) {
    const token = config[field];
    if (typeof token === 'string') specialTokens[field] = token;
  }
  return new TextTokenizer(
    tokenizer,
    config.chat_template === undefined ? undefined : new ChatTemplate(config.chat_template, specialTokens),
    {
      vocabSize: maxId + 1,
      eosTokenId,
      padTokenId: config.pad_token == null ? eosTokenId : idOf(config.pad_token, 'pad_token'),
      specialTokenIds: new Set(tokenizerJson.added_tokens.filter((t) => t.special).map((t) => t.id)),
    },
  );
}

async function readJson<T extends z.ZodType>(dir: string, name: string, schema: T): Promise<z.infer<T>> {
  const file = path.join(dir, name);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new DrError(
      'MODEL_TOKENIZER_INVALID',
      `cannot read ${file}; a tokenizer folder needs tokenizer.json and tokenizer_config.json`,
      {
        cause,
      },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new DrError('MODEL_TOKENIZER_INVALID', `${file} is not valid JSON: ${String(cause)}`, { cause });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new DrError('MODEL_TOKENIZER_INVALID', `${file} is malformed: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

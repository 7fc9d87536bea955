import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_DIR } from '../../runtime/model/embedded.ts';
import { loadTokenizer, QWEN25_TOKENIZER_DIR, type TextTokenizer } from '../../runtime/model/tokenizer.ts';
import { chatMlRenderer } from './chatml.ts';
import { buildPolicy } from './policy-factory.ts';
import type { Message } from './prompt.ts';
import { rendererOf } from './template-renderer.ts';

interface Case {
  name: string;
  messages: Message[];
  useTools: boolean;
  addGenerationPrompt: boolean;
}
const fixtures = new URL('../../runtime/model/fixtures/', import.meta.url);
const cases = (JSON.parse(readFileSync(new URL('chat-cases.json', fixtures), 'utf8')) as { cases: Case[] })
  .cases;
// What transformers' apply_chat_template rendered (scripts/chat-template-fixtures.py).
const expected = JSON.parse(readFileSync(new URL('chat-expected.json', fixtures), 'utf8')) as {
  cases: Record<string, { text: string }>;
};
const noToolCases = cases.filter((c) => !c.useTools && c.messages.every((m) => !('tool_calls' in m)));

let dir: string;
let qwen: TextTokenizer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dr-template-'));
  qwen = await loadTokenizer(QWEN25_TOKENIZER_DIR);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A tokenizer folder with the embedded vocabulary and `template` (none: no chat_template at all). */
async function tokenizerFolder(name: string, template: string | undefined): Promise<string> {
  const folder = join(dir, name);
  await rm(folder, { recursive: true, force: true });
  await mkdir(folder);
  await copyFile(join(EMBEDDED_DIR, 'tokenizer.json'), join(folder, 'tokenizer.json'));
  const config = JSON.parse(await readFile(join(EMBEDDED_DIR, 'tokenizer_config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  if (template === undefined) delete config.chat_template;
  else config.chat_template = template;
  await writeFile(join(folder, 'tokenizer_config.json'), JSON.stringify(config));
  return folder;
}

describe("a rollout's prompt renderer", () => {
  it.each(noToolCases.map((c) => [c.name, c] as const))(
    'renders "%s" with the Qwen2.5 template exactly as transformers does',
    (name, c) => {
      const renderer = rendererOf(qwen);
      expect(renderer.render(c.messages, { addGenerationPrompt: c.addGenerationPrompt })).toBe(
        expected.cases[name]!.text,
      );
    },
  );

  it("is the completions policy's own checkpoint template, not ChatML", async () => {
    const template =
      '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}';
    const folder = await tokenizerFolder('custom', template);
    const built = await buildPolicy(
      { kind: 'completions', baseURL: 'http://127.0.0.1:9/v1', model: 'm', tokenizerDir: folder },
      () => Promise.reject(new Error('unused')),
    );
    const messages: Message[] = [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'Q' },
      { role: 'assistant', content: 'A' },
      { role: 'tool', content: 'R' },
    ];
    expect(built.renderer?.render(messages, { addGenerationPrompt: true })).toBe(
      '[system] S\n[user] Q\n[assistant] A\n[tool] R\n[assistant] ',
    );
  });

  it('falls back to ChatML for a tokenizer without a chat template', async () => {
    const tokenizer = await loadTokenizer(await tokenizerFolder('bare', undefined));
    expect(rendererOf(tokenizer)).toBe(chatMlRenderer);
  });
});

/**
 * The project side of the Hugging Face export check (scripts/hf-export-check.py loads what this writes with
 * transformers on the GPU machine): exports the embedded policy (f32 and bf16) and a small random Qwen2 cut
 * into shards with `exportHfFolder`, computes each folder's logits for a fixed batch with this runtime, and
 * renders a research trajectory's prompt with the folder's own chat template.
 *
 *   npx tsx scripts/hf-export-check.ts --out DIR
 */
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { rendererOf } from '../actors/rollout/template-renderer.ts';
import { initialMessages } from '../actors/rollout/prompt.ts';
import { loadCheckpoint } from '../runtime/model/checkpoint.ts';
import { EMBEDDED_DIR } from '../runtime/model/embedded.ts';
import { Qwen2Generator } from '../runtime/model/generate.ts';
import { exportHfFolder } from '../runtime/model/hf-export.ts';
import { writeSafetensors } from '../runtime/model/safetensors.ts';
import { randomCheckpoint, tinyConfig } from '../runtime/model/testing.ts';
import { loadTokenizer } from '../runtime/model/tokenizer.ts';

const { out } = new Command()
  .requiredOption('--out <dir>', 'where to write the folders')
  .parse()
  .opts<{ out: string }>();

const embedded = await loadCheckpoint(EMBEDDED_DIR);
const folders = [
  { name: 'embedded-f32', model: embedded, options: { base: EMBEDDED_DIR, dtype: 'F32' as const } },
  { name: 'embedded-bf16', model: embedded, options: { base: EMBEDDED_DIR, dtype: 'BF16' as const } },
  {
    name: 'tiny-sharded',
    model: randomCheckpoint(tinyConfig({ vocab_size: 512, hidden_size: 64 }), 11, 0.2),
    options: { dtype: 'F32' as const, maxShardBytes: 100_000 },
  },
];
const report: Record<string, unknown> = {};
for (const f of folders) {
  const dir = path.join(out, f.name);
  const r = await exportHfFolder(dir, f.model, f.options);
  // Logits of what was written, as this runtime reads the folder back (bf16 weights as stored).
  const written = await loadCheckpoint(dir);
  const vocab = written.config.vocabSize;
  const sequences = [0, 1].map((row) =>
    Array.from({ length: 24 }, (_, t) => (17 * t + 101 * row + 5) % vocab),
  );
  const generator = await Qwen2Generator.create(written);
  const logits = await generator.logits(sequences);
  await generator.release();
  await writeSafetensors(path.join(out, `${f.name}.ours.safetensors`), {
    input_ids: { shape: [2, 24], data: Float32Array.from(sequences.flat()) },
    logits: { shape: [...logits.dims], data: logits.data },
  });
  report[f.name] = { shards: r.shards };
}
const messages = [
  ...initialMessages(
    'Who wrote the novel that the 1962 film was based on?',
    new Date('2026-12-04T00:00:00Z'),
  ),
];
const chat = {
  messages,
  ours: rendererOf(await loadTokenizer(path.join(out, 'embedded-f32'))).render(messages, {
    addGenerationPrompt: true,
  }),
};
await writeFile(path.join(out, 'chat.json'), JSON.stringify(chat));
console.log(JSON.stringify(report));

import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isDrError } from '../../config/errors.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { exportHfFolder } from './hf-export.ts';
import { qwen2ParamShapes } from './qwen2-config.ts';
import { fromFloat32, readSafetensors, toFloat32 } from './safetensors.ts';
import { randomCheckpoint, tinyConfig } from './testing.ts';
import { QWEN25_TOKENIZER_DIR } from './tokenizer.ts';

describe('exportHfFolder', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hf-export-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('shards above the limit with an index whose weight_map and total_size cover every tensor once', async () => {
    const model = randomCheckpoint(tinyConfig(), 3);
    const out = join(dir, 'hf');
    const r = await exportHfFolder(out, model, { dtype: 'F32', maxShardBytes: 20_000 });

    expect(r.shards.length).toBeGreaterThan(1);
    expect(r.shards[0]).toBe(`model-00001-of-${String(r.shards.length).padStart(5, '0')}.safetensors`);
    const index = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    const shapes = qwen2ParamShapes(model.config);
    expect(Object.keys(index.weight_map).sort()).toEqual([...shapes.keys()].sort());
    const count = [...shapes.values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
    expect(index.metadata.total_size).toBe(count * 4);
    for (const shard of r.shards) {
      const inShard = await readSafetensors(join(out, shard));
      for (const [name, t] of inShard) {
        expect(index.weight_map[name]).toBe(shard);
        expect(t.shape).toEqual(shapes.get(name));
      }
    }
    // Loads back bit for bit through the sharded path.
    const back = await loadCheckpoint(out);
    for (const [name, t] of model.weights) expect(back.weights.get(name)!.data).toEqual(t.data);
  });

  it('writes one model.safetensors in bf16 by default, rounded as the safetensors writer rounds', async () => {
    const model = randomCheckpoint(tinyConfig(), 4);
    const out = join(dir, 'hf');
    const r = await exportHfFolder(out, model);

    expect(r.shards).toEqual(['model.safetensors']);
    expect((await readdir(out)).sort()).toEqual(
      [
        'config.json',
        'generation_config.json',
        'model.safetensors',
        'tokenizer.json',
        'tokenizer_config.json',
      ].sort(),
    );
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      model_type: 'qwen2',
      torch_dtype: 'bfloat16',
      architectures: ['Qwen2ForCausalLM'],
    });
    const back = await loadCheckpoint(out);
    const name = 'model.layers.0.mlp.up_proj.weight';
    expect(back.weights.get(name)!.data).toEqual(
      toFloat32(fromFloat32(model.weights.get(name)!.data, 'BF16'), 'BF16'),
    );
    // Without a base the tokenizer is Qwen2.5's, chat template included.
    const tokenizerConfig = JSON.parse(await readFile(join(out, 'tokenizer_config.json'), 'utf8')) as {
      chat_template?: string;
    };
    expect(tokenizerConfig.chat_template).toContain('<|im_start|>');
    const [copied, vendored] = await Promise.all([
      readFile(join(out, 'tokenizer.json')),
      readFile(join(QWEN25_TOKENIZER_DIR, 'tokenizer.json')),
    ]);
    expect(copied.equals(vendored)).toBe(true);
  });

  it("keeps the base folder's config fields, generation config and tokenizer files", async () => {
    const model = randomCheckpoint(tinyConfig(), 5);
    const base = join(dir, 'base');
    await saveCheckpoint(base, model);
    const baseConfig = JSON.parse(await readFile(join(base, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    await writeFile(
      join(base, 'config.json'),
      JSON.stringify({ ...baseConfig, bos_token_id: 151643, use_cache: true }),
    );
    await writeFile(
      join(base, 'generation_config.json'),
      JSON.stringify({ top_p: 0.8, eos_token_id: [7, 8] }),
    );
    await writeFile(join(base, 'chat_template.jinja'), '{{ messages }}');
    for (const f of ['tokenizer.json', 'tokenizer_config.json'])
      await copyFile(join(QWEN25_TOKENIZER_DIR, f), join(base, f));

    const out = join(dir, 'hf');
    await exportHfFolder(out, model, { base, dtype: 'F16' });

    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ bos_token_id: 151643, use_cache: true, torch_dtype: 'float16' });
    expect(JSON.parse(await readFile(join(out, 'generation_config.json'), 'utf8'))).toEqual({
      top_p: 0.8,
      eos_token_id: [7, 8],
    });
    expect(await readFile(join(out, 'chat_template.jinja'), 'utf8')).toBe('{{ messages }}');
  });

  it('replaces an existing folder whole and leaves no temporary folder behind', async () => {
    const out = join(dir, 'hf');
    await mkdir(out);
    await writeFile(join(out, 'stale.safetensors'), 'old');
    await exportHfFolder(out, randomCheckpoint(tinyConfig(), 6));
    expect(await readdir(out)).not.toContain('stale.safetensors');
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('refuses weights that do not match the config, naming the tensor, and writes nothing', async () => {
    const model = randomCheckpoint(tinyConfig(), 7);
    const weights = new Map(model.weights);
    weights.delete('model.norm.weight');
    const out = join(dir, 'hf');
    const err = await exportHfFolder(out, { config: model.config, weights }).catch((e: unknown) => e);
    expect(isDrError(err, 'MODEL_EXPORT_MISMATCH')).toBe(true);
    expect((err as Error).message).toContain('model.norm.weight');
    expect(await readdir(dir)).toEqual([]);
  });
});

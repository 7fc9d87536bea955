/**
 * The ONNX side of the GPU parity check (driven by scripts/model-parity.py, which builds the reference with
 * transformers): loads the checkpoint in DIR, computes logits of the prompt batch in DIR/inputs.safetensors,
 * and the gradients of the SFT and GRPO losses, and writes them to DIR/ours-<provider>.safetensors.
 *
 *   node --import tsx scripts/model-parity.ts --dir DIR --provider cpu|cuda
 */
import path from 'node:path';
import { Command } from 'commander';
import { loadCheckpoint } from '../runtime/model/checkpoint.ts';
import { Qwen2Generator } from '../runtime/model/generate.ts';
import { readSafetensors, writeSafetensors, type FloatTensor } from '../runtime/model/safetensors.ts';
import { Qwen2Trainer, type TokenBatch } from '../runtime/model/trainer.ts';

const program = new Command()
  .requiredOption('--dir <dir>', 'folder with config.json, model.safetensors and inputs.safetensors')
  .option('--provider <provider>', 'cpu or cuda', 'cpu')
  .parse();
const { dir, provider } = program.opts<{ dir: string; provider: 'cpu' | 'cuda' }>();

const checkpoint = await loadCheckpoint(dir);
const inputs = await readSafetensors(path.join(dir, 'inputs.safetensors'));
const get = (name: string): FloatTensor => {
  const t = inputs.get(name);
  if (t === undefined) throw new Error(`inputs.safetensors lacks ${name}`);
  return t;
};
const ids = get('input_ids');
const [rows, cols] = ids.shape as [number, number];
const batch: TokenBatch = {
  rows,
  cols,
  inputIds: Int32Array.from(ids.data),
  attention: get('attention_mask').data,
  lossMask: get('loss_mask').data,
  advantage: get('advantages').data,
  oldLogprob: get('old_logprobs').data,
  refLogprob: get('ref_logprobs').data,
};
const grpo = get('grpo_settings').data; // clip_low, clip_high, kl_coef, entropy_coef, denominator

const out = new Map<string, FloatTensor>();
const session = { provider, intraOpThreads: provider === 'cpu' ? 0 : 1 } as const;

const generator = await Qwen2Generator.create(checkpoint, session);
const sequences = Array.from({ length: rows }, (_, r) => {
  const row: number[] = [];
  for (let t = 0; t < cols && batch.attention[r * cols + t] === 1; t++)
    row.push(batch.inputIds[r * cols + t]!);
  return row;
});
const logits = await generator.logits(sequences);
out.set('logits', { shape: [...logits.dims], data: logits.data });
await generator.release();

const trainer = new Qwen2Trainer(checkpoint.config, session);
const weights = trainer.params.map((p) => checkpoint.weights.get(p.name)!.data);
const lp = await trainer.logprobs(weights, batch);
out.set('logprobs', { shape: [rows, cols], data: lp });
const denominator = grpo[4]!;
const sft = await trainer.sftGradients(weights, batch, denominator);
const rl = await trainer.grpoGradients(
  weights,
  batch,
  {
    clipRatioLow: grpo[0]!,
    clipRatioHigh: grpo[1]!,
    clipRatioC: null,
    klCoef: grpo[2]!,
    entropyCoef: grpo[3]!,
  },
  denominator,
);
trainer.params.forEach((p, i) => {
  out.set(`sft.${p.name}`, { shape: p.shape, data: sft.grads[i]! });
  out.set(`grpo.${p.name}`, { shape: p.shape, data: rl.grads[i]! });
});
out.set('losses', { shape: [2], data: Float32Array.of(sft.loss, rl.loss) });
await trainer.dispose();

const file = path.join(dir, `ours-${provider}.safetensors`);
await writeSafetensors(file, out);
console.log(JSON.stringify({ wrote: file, sftLoss: sft.loss, grpoLoss: rl.loss }));

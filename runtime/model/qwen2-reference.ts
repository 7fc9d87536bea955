/**
 * A plain-loop float64 Qwen2 forward pass, written straight from the architecture (Hugging Face's
 * modeling_qwen2 semantics) and independent of the ONNX graphs: tests compare the graphs against it.
 * Slow by design; only for tiny configs.
 */
import type { Qwen2Config } from './qwen2-config.ts';
import type { FloatTensor } from './safetensors.ts';

type Vec = Float64Array;

export function referenceLogits(
  config: Qwen2Config,
  weights: ReadonlyMap<string, FloatTensor>,
  ids: readonly (readonly number[])[],
  positions: readonly (readonly number[])[],
  mask: readonly (readonly number[])[],
): number[][][] {
  const W = (name: string): Float32Array => {
    const t = weights.get(name);
    if (t === undefined) throw new Error(`missing ${name}`);
    return t.data;
  };
  const { hiddenSize: hs, numHeads, numKvHeads, headDim: d, intermediateSize: inter, vocabSize } = config;
  const linear = (x: Vec, w: Float32Array, out: number, bias?: Float32Array): Vec => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = bias ? bias[o]! : 0;
      for (let i = 0; i < x.length; i++) s += w[o * x.length + i]! * x[i]!;
      y[o] = s;
    }
    return y;
  };
  const rms = (x: Vec, w: Float32Array): Vec => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const r = 1 / Math.sqrt(ss / x.length + config.rmsNormEps);
    return x.map((v, i) => v * r * w[i]!);
  };
  const rope = (x: Vec, heads: number, pos: number): Vec => {
    const out = new Float64Array(x.length);
    const half = d / 2;
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const angle = pos / config.ropeTheta ** ((2 * i) / d);
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        const a = x[h * d + i]!;
        const b = x[h * d + half + i]!;
        out[h * d + i] = a * c - b * s;
        out[h * d + half + i] = b * c + a * s;
      }
    }
    return out;
  };
  const head = config.tieWordEmbeddings ? W('model.embed_tokens.weight') : W('lm_head.weight');
  const emb = W('model.embed_tokens.weight');
  return ids.map((row, b) => {
    const T = row.length;
    let xs: Vec[] = row.map((id) => Float64Array.from(emb.subarray(id * hs, (id + 1) * hs)));
    for (let l = 0; l < config.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const normed = xs.map((x) => rms(x, W(`${p}input_layernorm.weight`)));
      const q = normed.map((x, t) =>
        rope(
          linear(x, W(`${p}self_attn.q_proj.weight`), numHeads * d, W(`${p}self_attn.q_proj.bias`)),
          numHeads,
          positions[b]![t]!,
        ),
      );
      const k = normed.map((x, t) =>
        rope(
          linear(x, W(`${p}self_attn.k_proj.weight`), numKvHeads * d, W(`${p}self_attn.k_proj.bias`)),
          numKvHeads,
          positions[b]![t]!,
        ),
      );
      const v = normed.map((x) =>
        linear(x, W(`${p}self_attn.v_proj.weight`), numKvHeads * d, W(`${p}self_attn.v_proj.bias`)),
      );
      xs = xs.map((x, t) => {
        const attn = new Float64Array(numHeads * d);
        for (let h = 0; h < numHeads; h++) {
          const kvh = Math.floor(h / (numHeads / numKvHeads));
          const scores: number[] = [];
          for (let j = 0; j < T; j++) {
            if (j > t || mask[b]![j] === 0) {
              scores.push(-Infinity);
              continue;
            }
            let s = 0;
            for (let i = 0; i < d; i++) s += q[t]![h * d + i]! * k[j]![kvh * d + i]!;
            scores.push(s / Math.sqrt(d));
          }
          const m = Math.max(...scores);
          const e = scores.map((s) => (s === -Infinity ? 0 : Math.exp(s - m)));
          const z = e.reduce((a, c) => a + c, 0);
          if (z === 0) continue; // a padding query with no visible key
          for (let j = 0; j < T; j++) {
            for (let i = 0; i < d; i++) attn[h * d + i]! += (e[j]! / z) * v[j]![kvh * d + i]!;
          }
        }
        const o = linear(attn, W(`${p}self_attn.o_proj.weight`), hs);
        return x.map((val, i) => val + o[i]!);
      });
      xs = xs.map((x) => {
        const n = rms(x, W(`${p}post_attention_layernorm.weight`));
        const g = linear(n, W(`${p}mlp.gate_proj.weight`), inter);
        const u = linear(n, W(`${p}mlp.up_proj.weight`), inter);
        const act = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]!);
        const down = linear(act, W(`${p}mlp.down_proj.weight`), hs);
        return x.map((val, i) => val + down[i]!);
      });
    }
    return xs.map((x) => [...linear(rms(x, W('model.norm.weight')), head, vocabSize)]);
  });
}

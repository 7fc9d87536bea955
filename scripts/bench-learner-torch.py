"""PyTorch baseline for `npm run bench:learner`: the same Qwen2 model (weights read from the bench's
model.safetensors), the same micro-batch and the same GRPO step as the LearnerActor — old and reference
log-probabilities without grad, verl's PPO-clip + k3 KL token-mean loss, backward, clip_grad_norm_, AdamW —
timed over --steps steps after --warmup warm-up steps (default 1). Pure torch (no transformers), so it runs wherever
python3-torch does. Debian's python3-torch calls whatever libblas.so.3 resolves to (the generic reference
BLAS by default): point LD_LIBRARY_PATH at OpenBLAS for a fair CPU baseline (see actors/learner/README.md). Prints one JSON line: {"tokensPerSecond", "firstLoss", "device", "threads"}.
"""
import argparse
import json
import math
import time

import torch
from torch_checkpoint import load_safetensors





class Qwen2:
    def __init__(self, cfg, weights, device):
        self.c = cfg
        self.p = {k: v.to(device).requires_grad_(True) for k, v in weights.items()}

    def logits(self, ids, pos, att):
        c, p = self.c, self.p
        h, nh, kvh = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        d = h // nh
        B, T = ids.shape
        x = p["model.embed_tokens.weight"][ids]
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, d, 2, device=ids.device, dtype=torch.float32) / d))
        fr = pos[..., None].float() * inv
        emb = torch.cat([fr, fr], -1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]
        causal = torch.ones(T, T, dtype=torch.bool, device=ids.device).tril()
        allowed = causal[None, None] & att.bool()[:, None, None, :]
        bias = torch.where(allowed, 0.0, -1e9)

        def norm(t, w):
            return w * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + c["rms_norm_eps"]))

        def rot(t):
            t1, t2 = t[..., : d // 2], t[..., d // 2 :]
            return t * cos + torch.cat([-t2, t1], -1) * sin

        for i in range(c["num_hidden_layers"]):
            q_ = f"model.layers.{i}."
            a = norm(x, p[q_ + "input_layernorm.weight"])
            q = (a @ p[q_ + "self_attn.q_proj.weight"].T + p[q_ + "self_attn.q_proj.bias"]).view(B, T, nh, d).transpose(1, 2)
            k = (a @ p[q_ + "self_attn.k_proj.weight"].T + p[q_ + "self_attn.k_proj.bias"]).view(B, T, kvh, d).transpose(1, 2)
            v = (a @ p[q_ + "self_attn.v_proj.weight"].T + p[q_ + "self_attn.v_proj.bias"]).view(B, T, kvh, d).transpose(1, 2)
            q, k = rot(q), rot(k)
            k = k.repeat_interleave(nh // kvh, 1)
            v = v.repeat_interleave(nh // kvh, 1)
            s = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, -1)
            o = (s @ v).transpose(1, 2).reshape(B, T, h)
            x = x + o @ p[q_ + "self_attn.o_proj.weight"].T
            m = norm(x, p[q_ + "post_attention_layernorm.weight"])
            g = torch.nn.functional.silu(m @ p[q_ + "mlp.gate_proj.weight"].T) * (m @ p[q_ + "mlp.up_proj.weight"].T)
            x = x + g @ p[q_ + "mlp.down_proj.weight"].T
        x = norm(x, p["model.norm.weight"])
        head = p["model.embed_tokens.weight"] if c.get("tie_word_embeddings") else p["lm_head.weight"]
        return x @ head.T

    def token_logprobs(self, ids, pos, att):
        logp = torch.log_softmax(self.logits(ids, pos, att)[:, :-1], -1)
        return logp.gather(-1, ids[:, 1:, None]).squeeze(-1), logp


def grpo_loss(lp, old, ref, adv, mask, denom, clip=0.2, kl_coef=0.001):
    log_ratio = (lp - old).clamp(-20, 20)
    ratio = log_ratio.exp()
    pg = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip))
    dd = (ref - lp).clamp(-20, 20)
    k3 = (dd.exp() - dd - 1).clamp(-10, 10)
    return ((pg + kl_coef * k3) * mask).sum() / denom


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-6)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device(args.device)
    cfg = json.load(open(f"{args.dir}/config.json"))
    cfg.setdefault("rope_theta", 10000.0)
    cfg.setdefault("rms_norm_eps", 1e-6)
    cfg.setdefault("num_key_value_heads", cfg["num_attention_heads"])
    batch = json.load(open(f"{args.dir}/batch.json"))
    weights = load_safetensors(f"{args.dir}/model.safetensors")
    model = Qwen2(cfg, weights, dev)
    ref = Qwen2(cfg, weights, dev)
    B, T = batch["rows"], batch["cols"]
    ids = torch.tensor(batch["inputIds"], device=dev).view(B, T)
    att = torch.tensor(batch["attention"], device=dev).view(B, T)
    pos = torch.arange(T, device=dev)[None].expand(B, T)
    mask = torch.tensor(batch["lossMask"], device=dev, dtype=torch.float32).view(B, T)[:, 1:]
    adv = torch.tensor(batch["advantage"], device=dev, dtype=torch.float32).view(B, T)[:, 1:]
    denom = mask.sum()
    params = list(model.p.values())
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    tokens = float(att.sum())

    def step():
        with torch.no_grad():
            old, _ = model.token_logprobs(ids, pos, att)
            rlp, _ = ref.token_logprobs(ids, pos, att)
        lp, _ = model.token_logprobs(ids, pos, att)
        loss = grpo_loss(lp, old, rlp, adv, mask, denom)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return float(loss)

    first = step()
    for _ in range(args.warmup - 1):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    secs = time.perf_counter() - t0
    print(json.dumps({"tokensPerSecond": tokens * args.steps / secs, "firstLoss": first, "device": str(dev),
                      "threads": torch.get_num_threads(), "blas": blas_library()}))


def blas_library():
    """The BLAS shared library this process loaded (Debian's torch uses whatever libblas.so.3 resolves to)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and ".so" in line}
        return sorted(libs)[0].rsplit("/", 2)[-2] + "/" + sorted(libs)[0].rsplit("/", 1)[-1] if libs else "builtin"
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()

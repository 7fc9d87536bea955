"""PyTorch side of `npm run bench:model`: the same Qwen2 model (read from DIR/config.json and
DIR/model.safetensors, F32), batch and loss as scripts/bench-model.ts, timed the same way, printed as one
JSON line. The model is written here in plain torch (eager attention, KV cache grown with torch.cat as
transformers' DynamicCache does), so it runs on any torch (Debian's 1.13 on CPU, 2.x on the GPU machine)
without transformers.

Usage: python3 scripts/bench-model.py --dir DIR --batch B --seq T --prompt P --new N --steps K --threads H --device cpu|cuda
"""
import argparse
import json
import math
import time

import torch
from torch_checkpoint import load_safetensors




class Qwen2(torch.nn.Module):
    def __init__(self, cfg, weights):
        super().__init__()
        self.cfg = cfg
        self.params = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v.clone()) for k, v in weights.items()})
        d = cfg["head_dim"]
        self.inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2).float() / d))

    def w(self, name):
        return self.params[name.replace(".", "__")]

    def rms(self, x, name):
        v = x.pow(2).mean(-1, keepdim=True)
        return self.w(name) * (x * torch.rsqrt(v + self.cfg["rms_norm_eps"]))

    def rope(self, x, pos):  # x [B, H, T, D], pos [B, T]
        f = pos[..., None].float() * self.inv_freq.to(x.device)
        emb = torch.cat([f, f], -1)[:, None]
        x1, x2 = x.chunk(2, -1)
        return x * emb.cos() + torch.cat([-x2, x1], -1) * emb.sin()

    def forward(self, ids, pos, bias, cache=None):
        """bias: additive [B, 1, T, S]; cache: list of (k, v) per layer or None; returns logits, new cache."""
        c = self.cfg
        h, kvh, d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        x = torch.nn.functional.embedding(ids, self.w("model.embed_tokens.weight"))
        b, t, _ = x.shape
        new_cache = []
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            n = self.rms(x, p + "input_layernorm.weight")
            lin = lambda z, nm, bias_=True: torch.nn.functional.linear(
                z, self.w(p + nm + ".weight"), self.w(p + nm + ".bias") if bias_ else None)
            q = self.rope(lin(n, "self_attn.q_proj").view(b, t, h, d).transpose(1, 2), pos)
            k = self.rope(lin(n, "self_attn.k_proj").view(b, t, kvh, d).transpose(1, 2), pos)
            v = lin(n, "self_attn.v_proj").view(b, t, kvh, d).transpose(1, 2)
            if cache is not None:
                k = torch.cat([cache[i][0], k], 2)
                v = torch.cat([cache[i][1], v], 2)
            new_cache.append((k, v))
            kk = k.repeat_interleave(h // kvh, 1)
            vv = v.repeat_interleave(h // kvh, 1)
            att = torch.softmax(q @ kk.transpose(-1, -2) / math.sqrt(d) + bias, -1) @ vv
            x = x + lin(att.transpose(1, 2).reshape(b, t, h * d), "self_attn.o_proj", False)
            n = self.rms(x, p + "post_attention_layernorm.weight")
            g = lin(n, "mlp.gate_proj", False)
            x = x + lin(torch.nn.functional.silu(g) * lin(n, "mlp.up_proj", False), "mlp.down_proj", False)
        x = self.rms(x, "model.norm.weight")
        head = self.w("model.embed_tokens.weight") if c["tie_word_embeddings"] else self.w("lm_head.weight")
        return x @ head.t(), new_cache


def causal_bias(t, device):
    return torch.full((t, t), -1e9, device=device).triu(1)[None, None]


def timed(fn, device, repeats):
    fn()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def main():
    ap = argparse.ArgumentParser()
    for a in ("batch", "seq", "prompt", "new", "steps", "threads"):
        ap.add_argument(f"--{a}", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    cfg = json.load(open(f"{args.dir}/config.json"))
    cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    model = Qwen2(cfg, load_safetensors(f"{args.dir}/model.safetensors")).to(args.device)
    dev = args.device
    g = torch.Generator().manual_seed(0)
    B, T = args.batch, args.seq
    ids = torch.randint(0, cfg["vocab_size"] - 64, (B, T), generator=g).to(dev)
    pos = torch.arange(T, device=dev)[None].expand(B, T)
    bias = causal_bias(T, dev)

    with torch.no_grad():
        fwd = timed(lambda: model(ids, pos, bias), dev, 3)

    def decode():
        p = ids[:, : args.prompt]
        pp = pos[:, : args.prompt]
        logits, cache = model(p, pp, causal_bias(args.prompt, dev))
        tok = logits[:, -1].argmax(-1, keepdim=True)
        for s in range(args.new - 1):
            torch.log_softmax(logits[:, -1], -1).gather(-1, tok)  # the per-token logprob the runtime reports
            logits, cache = model(tok, torch.full((B, 1), args.prompt + s, device=dev), 0.0, cache)
            tok = logits[:, -1].argmax(-1, keepdim=True)
        return tok.cpu()

    def prefill():
        return model(ids[:, : args.prompt], pos[:, : args.prompt], causal_bias(args.prompt, dev))[0][:, -1].cpu()

    with torch.no_grad():
        gen = timed(decode, dev, 1)
        pre = timed(prefill, dev, 2)

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    mask = torch.ones(B, T, device=dev)
    mask[:, : T // 4] = 0

    def step():
        logits, _ = model(ids, pos, bias)
        logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        loss = -(logp * mask[:, 1:]).sum() / mask[:, 1:].sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    train = timed(step, dev, args.steps)
    print(json.dumps({
        "torch": torch.__version__, "device": dev, "threads": torch.get_num_threads(),
        "forward_tokens_per_s": B * T / fwd,
        "decode_tokens_per_s": B * (args.new - 1) / max(gen - pre, 1e-9),
        "train_tokens_per_s": B * T / train,
    }))


if __name__ == "__main__":
    main()

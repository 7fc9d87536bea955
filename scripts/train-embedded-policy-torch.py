"""Supervised warm start of the embedded policy on a GPU with PyTorch: the same data, loss and optimizer as
scripts/train-embedded-policy.ts, for far more steps than 2 CPU cores allow.

Input (written by `npx tsx scripts/train-embedded-policy.ts --worlds N --init DIR --export DATA`):
DATA/sft.bin.gz (expert conversations: token ids and loss masks over the assistant turns), DATA/config.json
and DATA/model.safetensors (the weights to start from). The model is transformers' Qwen2ForCausalLM built
from that config (same parameter names as runtime/model; parity in runtime/model/PARITY.md); where
transformers is missing (Debian's torch on the 2-core machine, for a smoke test) the plain-torch Qwen2 of
scripts/bench-model.py stands in.

Loss: masked token-mean NLL (token j predicted from 0..j-1, summed over the mask, divided by the batch's mask
count). AdamW with fp32 master weights, bf16 autocast on CUDA, gradient norm clipped at 1, linear warm-up then
cosine to 10% over the time budget (so the schedule fits --minutes whatever the speed). A small slice of the
conversations is held out to report a validation loss before and after. Writes OUT/model.safetensors (F32,
the input's tensor names, so tied embeddings stay tied), OUT/config.json and OUT/train-log.json, and
refreshes the weights every minute so a run cut short still leaves its latest weights.

  python3 scripts/train-embedded-policy-torch.py --data .gpu-train --out $OUT --minutes 6
"""
import argparse
import gzip
import importlib.util
import json
import math
import os
import random
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch_checkpoint import load_safetensors


def load_examples(path):
    raw = gzip.open(path, "rb").read()
    n, total = struct.unpack_from("<II", raw, 0)
    lengths = np.frombuffer(raw, dtype="<u4", count=n, offset=8)
    ids = np.frombuffer(raw, dtype="<u2", count=total, offset=8 + 4 * n)
    mask = np.frombuffer(raw, dtype=np.uint8, count=total, offset=8 + 4 * n + 2 * total)
    starts = np.zeros(n, dtype=np.int64)
    starts[1:] = np.cumsum(lengths[:-1], dtype=np.int64)
    return [(ids[s:s + l].astype(np.int64), mask[s:s + l].astype(np.float32)) for s, l in zip(starts.tolist(), lengths.tolist())]




def write_safetensors(path, tensors, metadata):
    header, offset = {"__metadata__": metadata}, 0
    for name, t in tensors.items():
        nbytes = t.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for t in tensors.values():
            f.write(t.detach().float().cpu().contiguous().numpy().tobytes())
    os.replace(tmp, path)


class TransformersModel:
    def __init__(self, cfg, weights, device):
        import transformers
        from transformers import Qwen2Config, Qwen2ForCausalLM

        self.version = f"transformers {transformers.__version__}"
        # transformers 5 keeps rope_theta under rope_parameters; 4.x reads the flat key. Both are given.
        fields = {k: v for k, v in cfg.items() if k not in ("architectures", "model_type", "torch_dtype", "dtype")}
        config = Qwen2Config(rope_parameters={"rope_type": "default", "rope_theta": cfg["rope_theta"]}, **fields)
        config._attn_implementation = "sdpa"
        self.module = Qwen2ForCausalLM(config)
        missing, unexpected = self.module.load_state_dict(weights, strict=False)
        assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
        if cfg["tie_word_embeddings"]:
            self.module.lm_head.weight = self.module.model.embed_tokens.weight
            assert self.module.lm_head.weight is self.module.model.embed_tokens.weight
        self.module.to(device)
        self.state = self.module.state_dict(keep_vars=True)

    def logits(self, ids):
        # Right padding under a causal mask: real tokens never see the pads, so no attention mask is needed.
        return self.module(input_ids=ids).logits

    def param(self, name):
        return self.state[name]


class PlainModel:
    def __init__(self, cfg, weights, device):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-model.py")
        spec = importlib.util.spec_from_file_location("bench_model", path)
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        self.version = "plain torch (scripts/bench-model.py)"
        self.bench = bench
        self.module = bench.Qwen2(cfg, weights).to(device)

    def logits(self, ids):
        b, t = ids.shape
        pos = torch.arange(t, device=ids.device)[None].expand(b, t)
        return self.module(ids, pos, self.bench.causal_bias(t, ids.device))[0]

    def param(self, name):
        return self.module.w(name)


def make_model(cfg, weights, device, impl):
    if impl == "auto":
        impl = "transformers" if importlib.util.find_spec("transformers") else "plain"
    return (TransformersModel if impl == "transformers" else PlainModel)(cfg, weights, device)


def collate(batch, device):
    cols = max(len(ids) for ids, _ in batch)
    ids = np.zeros((len(batch), cols), dtype=np.int64)
    mask = np.zeros((len(batch), cols), dtype=np.float32)
    for r, (i, m) in enumerate(batch):
        ids[r, :len(i)] = i
        mask[r, :len(m)] = m
    return torch.from_numpy(ids).to(device, non_blocking=True), torch.from_numpy(mask).to(device, non_blocking=True)


def masked_nll(model, ids, mask, autocast):
    """Sum of -log p(token j | 0..j-1) over mask positions j >= 1, and the count of those positions."""
    with torch.autocast(device_type=ids.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = model.logits(ids[:, :-1])
    nll = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    m = mask[:, 1:].reshape(-1)
    return (nll * m).sum(), m.sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=6)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: time budget only)")
    ap.add_argument("--batch", type=int, default=64, help="conversations per step")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--val", type=int, default=256, help="conversations held out for the validation loss")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--impl", choices=["auto", "transformers", "plain"], default="auto",
                    help="transformers' Qwen2ForCausalLM (auto: when installed) or the plain-torch Qwen2")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    autocast = device.type == "cuda"
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    cfg = json.load(open(os.path.join(args.data, "config.json")))
    cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    init = load_safetensors(os.path.join(args.data, "model.safetensors"))
    names = list(init)
    model = make_model(cfg, init, device, args.impl)
    params = list({id(p): p for p in (model.param(n) for n in names)}.values())
    for p in params:
        p.requires_grad_(True)
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.999), eps=1e-8)

    examples = load_examples(os.path.join(args.data, "sft.bin.gz"))
    random.shuffle(examples)
    val, train = examples[:args.val], examples[args.val:]
    # Length buckets so a batch pads little; a step draws a random bucket, an epoch reshuffles the buckets.
    order = sorted(range(len(train)), key=lambda i: len(train[i][0]))
    buckets = [order[i:i + args.batch] for i in range(0, len(order) - args.batch + 1, args.batch)]
    print(f"{model.version} on {device}; {len(train)} train / {len(val)} val conversations, "
          f"{sum(len(e[0]) for e in train)} tokens; {len(buckets)} batches of {args.batch}", flush=True)

    def val_loss():
        with torch.no_grad():
            s = n = 0.0
            for i in range(0, len(val), args.batch):
                a, b = masked_nll(model, *collate(val[i:i + args.batch], device), autocast)
                s, n = s + a.item(), n + b.item()
        return s / max(n, 1)

    def save(step, extra):
        weights = {n: model.param(n) for n in names}
        meta = {"format": "pt", "producer": "scripts/train-embedded-policy-torch.py", "steps": str(step)}
        write_safetensors(os.path.join(args.out, "model.safetensors"), weights, meta)
        json.dump(cfg, open(os.path.join(args.out, "config.json"), "w"), indent=2)
        json.dump(extra, open(os.path.join(args.out, "train-log.json"), "w"), indent=1)

    log = {"args": vars(args), "model": model.version, "device": str(device),
           "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
           "trainConversations": len(train), "valConversations": len(val), "valLossBefore": val_loss(), "log": []}
    print(f"val loss before {log['valLossBefore']:.4f}", flush=True)
    budget = args.minutes * 60
    t0 = last_save = time.perf_counter()
    step = tokens = 0
    queue = []
    while True:
        elapsed = time.perf_counter() - t0
        if elapsed >= budget or (args.max_steps and step >= args.max_steps):
            break
        frac = elapsed / budget if not args.max_steps else step / args.max_steps
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if not queue:
            queue = random.sample(buckets, len(buckets))
        ids, mask = collate([train[i] for i in queue.pop()], device)
        total, count = masked_nll(model, ids, mask, autocast)
        loss = total / count
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        tokens += ids.numel()
        if step % 100 == 0:
            s = time.perf_counter() - t0
            row = {"step": step, "loss": loss.item(), "gradNorm": grad_norm.item(), "lr": lr, "seconds": round(s, 1),
                   "tokPerS": round(tokens / max(s, 1e-9))}
            log["log"].append(row)
            print(json.dumps(row), flush=True)
        step += 1
        if time.perf_counter() - last_save > 60:
            save(step, log)
            last_save = time.perf_counter()
    log.update(steps=step, trainSeconds=round(time.perf_counter() - t0, 1), trainTokens=tokens,
               valLossAfter=val_loss())
    print(f"{step} steps in {log['trainSeconds']} s, {tokens} tokens; val loss after {log['valLossAfter']:.4f}",
          flush=True)
    save(step, log)


if __name__ == "__main__":
    main()

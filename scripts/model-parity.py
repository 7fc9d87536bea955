"""Parity of the ONNX Qwen2 (runtime/model) with transformers' Qwen2ForCausalLM, run on the GPU machine.

For each of a few randomly initialised Qwen2 configs it saves the model with save_pretrained (config.json +
model.safetensors), builds a right-padded prompt batch, and computes with torch (fp32, TF32 off):
  - logits of the batch (compared at real tokens: max abs difference),
  - gradients of two token-level losses: the SFT loss (masked token-mean NLL) and the GRPO loss of the
    learner (PPO clip both sides, k3 KL to a reference, entropy bonus, token-mean over a denominator),
    compared per parameter tensor as relative L2 error ||ours - torch|| / ||torch||.
Then it runs scripts/model-parity.ts with each onnxruntime provider given and writes a JSON report and a
markdown table.

Usage: python3 scripts/model-parity.py --work DIR --report OUT.md [--providers cpu,cuda]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import Qwen2Config, Qwen2ForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent

CONFIGS = {
    "gqa-untied": dict(vocab_size=2048, hidden_size=128, intermediate_size=352, num_hidden_layers=3,
                       num_attention_heads=8, num_key_value_heads=2, rope_theta=1_000_000.0, tie_word_embeddings=False),
    "mha-tied": dict(vocab_size=1000, hidden_size=96, intermediate_size=160, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4, rope_theta=10_000.0, tie_word_embeddings=True),
}
GRPO = dict(clip_low=0.2, clip_high=0.28, kl_coef=0.05, entropy_coef=0.01)


def build_model(name, spec, seed, device):
    torch.manual_seed(seed)
    # transformers 5 keeps rope_theta under rope_parameters; 4.x reads the flat key. Both are given.
    rope = {"rope_type": "default", "rope_theta": spec["rope_theta"]}
    config = Qwen2Config(max_position_embeddings=512, rms_norm_eps=1e-6, use_sliding_window=False,
                         rope_parameters=rope, **spec)
    try:
        config._attn_implementation = "eager"
    except Exception as err:  # the default (sdpa) computes the same in fp32
        print("eager attention not selectable:", err, file=sys.stderr)
    model = Qwen2ForCausalLM(config)
    # Random weights at a scale where every path matters: transformers' init leaves biases at 0 and norms at 1.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif pname.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    return model.to(device).float()


def batch_for(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = [37, 64, 9, 50]
    rows, cols = len(lengths), max(lengths)
    ids = torch.randint(0, vocab, (rows, cols), generator=g)
    attention = torch.zeros(rows, cols)
    loss_mask = torch.zeros(rows, cols)
    for r, n in enumerate(lengths):
        attention[r, :n] = 1
        loss_mask[r, n // 3:n] = 1  # the "response" part of each row
        ids[r, n:] = 0
    advantages = torch.randn(rows, 1, generator=g).expand(rows, cols).contiguous()
    return ids, attention, loss_mask, advantages


def token_stats(model, ids, attention):
    positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0).expand_as(ids)
    logits = model(input_ids=ids, attention_mask=attention.long(), position_ids=positions).logits
    logp_all = torch.log_softmax(logits[:, :-1].float(), -1)
    logp = logp_all.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logits, logp, entropy


def sft_loss(logp, mask, denom):
    return -(logp * mask[:, 1:]).sum() / denom


def grpo_loss(logp, entropy, old, ref, adv, mask, denom):
    m = mask[:, 1:]
    ratio = torch.exp(torch.clamp(logp - old[:, 1:], -20, 20))
    a = adv[:, 1:]
    pg = torch.maximum(-a * ratio, -a * torch.clamp(ratio, 1 - GRPO["clip_low"], 1 + GRPO["clip_high"]))
    d = torch.clamp(ref[:, 1:] - logp, -20, 20)
    kl = torch.clamp(torch.exp(d) - d - 1, -10, 10)
    per_token = pg + GRPO["kl_coef"] * kl - GRPO["entropy_coef"] * entropy
    return (per_token * m).sum() / denom


def grads_of(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {n: p.grad.detach().cpu().clone() for n, p in model.named_parameters()}


def rel_err(ours, ref):
    return float((ours - ref).norm() / ref.norm().clamp_min(1e-30))


def run_config(name, spec, work, providers, device, node):
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    model = build_model(name, spec, seed=1234, device=device)
    model.save_pretrained(folder, safe_serialization=True)
    ids, attention, loss_mask, advantages = batch_for(spec["vocab_size"], seed=99)
    ids_d, att_d, mask_d, adv_d = (t.to(device) for t in (ids, attention, loss_mask, advantages))
    logits, logp, entropy = token_stats(model, ids_d, att_d)
    denom = float(loss_mask[:, 1:].sum())
    g = torch.Generator().manual_seed(7)
    noise = (0.3 * torch.randn(ids.shape, generator=g)).to(device)
    old = torch.zeros_like(att_d)
    old[:, 1:] = logp.detach()
    old = old + noise
    ref = old - 0.2 * noise.flip(1)
    sft = sft_loss(logp, mask_d, denom)
    rl = grpo_loss(logp, entropy, old, ref, adv_d, mask_d, denom)
    ref_sft = grads_of(model, sft)
    ref_grpo = grads_of(model, rl)

    settings = torch.tensor([GRPO["clip_low"], GRPO["clip_high"], GRPO["kl_coef"], GRPO["entropy_coef"], denom])
    save_file({
        "input_ids": ids.float(), "attention_mask": attention, "loss_mask": loss_mask, "advantages": advantages,
        "old_logprobs": old.cpu().float(), "ref_logprobs": ref.cpu().float(), "grpo_settings": settings,
    }, folder / "inputs.safetensors")

    result = {"config": spec, "tokens": int(attention.sum()), "loss_tokens": denom,
              "torch": {"sft_loss": float(sft), "grpo_loss": float(rl)}, "providers": {}}
    valid = attention.bool()
    for provider in providers:
        t0 = time.time()
        proc = subprocess.run(node + ["scripts/model-parity.ts", "--dir", str(folder), "--provider", provider],
                              cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            result["providers"][provider] = {"error": proc.stderr[-3000:]}
            print(proc.stderr[-3000:], file=sys.stderr)
            continue
        ours = load_file(folder / f"ours-{provider}.safetensors")
        ol = ours["logits"]
        tl = logits.detach().cpu()[:, : ol.shape[1]]
        logit_diff = float((ol - tl).abs()[valid[:, : ol.shape[1]]].max())
        lp_diff = float((ours["logprobs"][:, 1:] - logp.detach().cpu())[valid[:, 1:]].abs().max())
        sft_rel = {n: rel_err(ours[f"sft.{n}"], g_) for n, g_ in ref_sft.items()}
        grpo_rel = {n: rel_err(ours[f"grpo.{n}"], g_) for n, g_ in ref_grpo.items()}
        losses = ours["losses"].tolist()
        result["providers"][provider] = {
            "seconds": round(time.time() - t0, 1),
            "logits_max_abs_diff": logit_diff,
            "logprobs_max_abs_diff": lp_diff,
            "sft_loss_abs_diff": abs(losses[0] - float(sft)),
            "grpo_loss_abs_diff": abs(losses[1] - float(rl)),
            "sft_grad_max_rel_err": max(sft_rel.values()),
            "sft_grad_worst_param": max(sft_rel, key=sft_rel.get),
            "grpo_grad_max_rel_err": max(grpo_rel.values()),
            "grpo_grad_worst_param": max(grpo_rel, key=grpo_rel.get),
        }
        print(name, provider, json.dumps(result["providers"][provider]), flush=True)
    result["config_json"] = json.loads((folder / "config.json").read_text())
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--providers", default="cpu,cuda")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    node = ["node", "--import", "tsx"]
    work = pathlib.Path(args.work)
    report = {"torch": torch.__version__, "transformers": transformers.__version__, "device": device,
              "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None, "grpo": GRPO, "configs": {}}
    for name, spec in CONFIGS.items():
        report["configs"][name] = run_config(name, spec, work, args.providers.split(","), device, node)
    out = pathlib.Path(args.report)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    lines = [f"torch {report['torch']}, transformers {report['transformers']}, reference on {report['device']} "
             f"({report['gpu']}), fp32 with TF32 off.", "",
             "| config | provider | logits max abs | logprobs max abs | SFT grad max rel | GRPO grad max rel |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in report["configs"].items():
        for provider, p in r["providers"].items():
            if "error" in p:
                lines.append(f"| {name} | {provider} | error | | | |")
                continue
            lines.append(f"| {name} | {provider} | {p['logits_max_abs_diff']:.2e} | {p['logprobs_max_abs_diff']:.2e} | "
                         f"{p['sft_grad_max_rel_err']:.2e} | {p['grpo_grad_max_rel_err']:.2e} |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

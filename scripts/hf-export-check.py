"""Loads the folders scripts/hf-export-check.ts exported with transformers and compares with this project's
runtime: logits of the same batch (max abs difference, fp32, TF32 off), the sharded index, and the chat
template as AutoTokenizer.apply_chat_template renders it. Prints one JSON report.

Usage: python3 scripts/hf-export-check.py DIR
"""
import json
import pathlib
import sys

import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
root = pathlib.Path(sys.argv[1])
device = "cuda" if torch.cuda.is_available() else "cpu"
report = {"transformers": transformers.__version__, "torch": torch.__version__, "device": device, "folders": {}}
for name in ["embedded-f32", "embedded-bf16", "tiny-sharded"]:
    folder = root / name
    ours = load_file(str(root / f"{name}.ours.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).to(device).eval()
    ids = ours["input_ids"].long().to(device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float().cpu()
    diff = (logits - ours["logits"]).abs().max().item()
    scale = logits.abs().max().item()
    report["folders"][name] = {
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "stored_dtype": str(next(iter(load_file(str(next(folder.glob("*.safetensors")))).values())).dtype),
        "shards": len(list(folder.glob("*.safetensors"))),
        "logits_max_abs_diff": diff,
        "logits_max_abs": scale,
    }
chat = json.loads((root / "chat.json").read_text())
tok = AutoTokenizer.from_pretrained(str(root / "embedded-f32"))
theirs = tok.apply_chat_template(chat["messages"], tokenize=False, add_generation_prompt=True)
report["chat_template_equal"] = theirs == chat["ours"]
if theirs != chat["ours"]:
    report["chat_template_theirs"] = theirs[:400]
print(json.dumps(report, indent=1))

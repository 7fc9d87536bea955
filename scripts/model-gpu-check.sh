#!/usr/bin/env bash
# The model runtime's GPU checks in one device call (runtime/model/PARITY.md records what came back):
# unpacks the staged Node.js + node_modules + CUDA provider parts from /tmp/dr-gpu, then runs
#   1. the chat-template fixtures rendered by transformers' own apply_chat_template (+ token ids),
#   2. scripts/model-parity.py (logits and gradients vs transformers, onnxruntime CPU and CUDA providers),
#   3. bench:model on the CUDA provider (and on the GPU machine's CPU) beside torch.
# Every step writes into $OUT; a failing step does not stop the next.
set -u
out=${OUT:-/tmp/model-gpu-out}
mkdir -p "$out"
if [ ! -d /tmp/dr-gpu/nm ]; then
  (cd /tmp/dr-gpu && cat part.* | xz -dc | tar xf - && rm -f part.* && mkdir -p nm && tar -C nm -xf node_modules.tar \
    && rm -f node_modules.tar && cp libonnxruntime_providers_*.so nm/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/)
fi
ln -sfn /tmp/dr-gpu/nm/node_modules node_modules
export PATH=/tmp/dr-gpu/bin:$PATH
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
{ nvidia-smi -L; node --version; python3 -c 'import torch, transformers; print(torch.__version__, transformers.__version__)'; } > "$out/env.txt" 2>&1
python3 scripts/chat-template-fixtures.py "$out/chat-expected.json" > "$out/chat.log" 2>&1
timeout 300 python3 scripts/model-parity.py --work /tmp/parity --report "$out/parity.md" > "$out/parity.log" 2>&1
timeout 200 node --import tsx scripts/bench-model.ts --provider cuda --json "$out/bench-cuda.json" > "$out/bench-cuda.txt" 2>&1
timeout 120 node --import tsx scripts/bench-model.ts --provider cpu --threads 16 --json "$out/bench-cpu16.json" > "$out/bench-cpu16.txt" 2>&1
tail -n 30 "$out"/*.txt "$out"/*.log "$out/parity.md" 2>/dev/null

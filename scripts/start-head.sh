#!/usr/bin/env bash
# Start the head node (rank 0). Creates a cluster token in .dr-token if there is none (copy that file, or
# its content as DR_CLUSTER_TOKEN, to every worker). Extra arguments go to `dr head`.
#   scripts/start-head.sh [--port 29500] [--nnodes N] [--label k=v] ...
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DR_CLUSTER_TOKEN:-}" && ! -s .dr-token ]]; then
  umask 077
  node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('hex'))" > .dr-token
  echo "created a cluster token in $(pwd)/.dr-token; give it to every worker" >&2
fi
exec node scripts/dr.js head "$@"

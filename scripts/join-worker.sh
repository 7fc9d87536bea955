#!/usr/bin/env bash
# Join this machine to a running head as a worker. The head's address comes from the first argument
# (HOST:PORT) or from PET_MASTER_ADDR/PET_MASTER_PORT; the rank from --rank or PET_NODE_RANK; the token from
# DR_CLUSTER_TOKEN or .dr-token. Extra arguments go to `dr worker`.
#   scripts/join-worker.sh 10.0.0.1:29500 --rank 1 [--gpus 0,1] [--label zone=a] ...
set -euo pipefail
cd "$(dirname "$0")/.."
head="${PET_MASTER_ADDR:+${PET_MASTER_ADDR}:${PET_MASTER_PORT:-29500}}"
if [[ $# -gt 0 && "$1" != --* ]]; then
  head="$1"
  shift
fi
if [[ -z "$head" ]]; then
  echo "usage: scripts/join-worker.sh HOST:PORT --rank N [dr worker options] (or set PET_MASTER_ADDR / PET_MASTER_PORT)" >&2
  exit 2
fi
exec node scripts/dr.js worker --head "$head" "$@"

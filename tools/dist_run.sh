#!/usr/bin/env bash
# Start SCRIPT (tools/train.py or tools/test.py) in N processes on this node with torchrun.
#   usage: tools/dist_run.sh SCRIPT N [script args...]
# Several machines: run the same command on each with NNODES, NODE_RANK (0..NNODES-1), MASTER_ADDR and PORT
# set alike. Without CUDA, the processes talk over gloo (chosen by speaq_mm.engine.prepare_launch).
set -euo pipefail
SCRIPT=$1
NPROC=$2
shift 2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" \
  --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --master_port="${PORT:-29500}" \
  --nproc_per_node="$NPROC" \
  "$SCRIPT" "$@" --launcher pytorch

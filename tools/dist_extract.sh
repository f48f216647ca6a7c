#!/usr/bin/env bash
# usage: tools/dist_extract.sh CONFIG CHECKPOINT INPUT N --out graphs.jsonl [extract_scene_graphs.py args...]
# (see tools/dist_run.sh; without CUDA the processes talk over gloo)
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
INPUT=$3
NPROC=$4
shift 4
exec "$(dirname "$0")/dist_run.sh" "$(dirname "$0")/extract_scene_graphs.py" "$NPROC" "$CONFIG" "$CHECKPOINT" "$INPUT" "$@"

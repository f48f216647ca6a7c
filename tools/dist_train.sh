#!/usr/bin/env bash
# usage: tools/dist_train.sh CONFIG N [train.py args...]   (N processes per node; see tools/dist_run.sh)
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
exec "$(dirname "$0")/dist_run.sh" "$(dirname "$0")/train.py" "$NPROC" "$CONFIG" "$@"

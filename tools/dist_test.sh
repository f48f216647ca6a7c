#!/usr/bin/env bash
# usage: tools/dist_test.sh CONFIG CHECKPOINT N [test.py args...]   (see tools/dist_run.sh)
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
exec "$(dirname "$0")/dist_run.sh" "$(dirname "$0")/test.py" "$NPROC" "$CONFIG" "$CHECKPOINT" "$@"

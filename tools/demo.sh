#!/usr/bin/env bash
# `make demo`: install what is missing (idempotent), then train and evaluate the tiny SpeaQ on the toy
# real + synthetic mix (tools/demo.py; options are passed through, e.g. --minutes 5).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
bash tools/install.sh
exec "$PYTHON" tools/demo.py "$@"

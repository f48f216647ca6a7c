#!/usr/bin/env bash
# Idempotent set-up of everything speaq_mm needs, into the Python that runs it ($PYTHON, default python3).
#
#   torch     kept if importable; otherwise the CPU build torch==2.13.0 (GPU users install their torch first)
#   mmengine  0.10.7, mmdet 3.3.0
#   mmcv      2.1.0 compiled from source with its ops (no wheels exist for current torch); the wheel is
#             cached in $SPEAQ_MM_CACHE (default ~/.cache/speaq_mm) so a second environment installs it in seconds
#   the rest  requirements/{build,runtime,tests}.txt, then speaq_mm itself in editable mode
#
# Every step checks first and does nothing when its package is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
CACHE=${SPEAQ_MM_CACHE:-$HOME/.cache/speaq_mm}
MMCV_VERSION=2.1.0
PIP=("$PYTHON" -m pip install --disable-pip-version-check -q)

say() { printf '[install] %s\n' "$*"; }
has() { "$PYTHON" -c "$1" >/dev/null 2>&1; }

# One probe for the common case: everything already installed -> exit at once.
if "$PYTHON" - >/dev/null 2>&1 <<PY
import importlib.metadata as md, sys
import setuptools, torch, mmengine, mmdet, mmcv, mmcv._ext, h5py, scipy, matplotlib, pycocotools, pytest, speaq_mm
assert int(setuptools.__version__.split('.')[0]) < 82
assert mmcv.__version__ == '$MMCV_VERSION' and mmengine.__version__ == '0.10.7' and mmdet.__version__ == '3.3.0'
import ruff, skimage
PY
then
  say "all dependencies present (torch $("$PYTHON" -c 'import torch; print(torch.__version__)')); nothing to do"
  exit 0
fi

say "build tools (setuptools<82, wheel, ninja)"
"${PIP[@]}" -r requirements/build.txt

if has 'import torch'; then
  say "keeping installed torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
else
  say "installing torch==2.13.0 (CPU build)"
  "${PIP[@]}" torch==2.13.0
fi

has 'import mmengine; assert mmengine.__version__ == "0.10.7"' || {
  say "installing mmengine 0.10.7"; "${PIP[@]}" mmengine==0.10.7; }

if has "import mmcv, mmcv._ext; assert mmcv.__version__ == '$MMCV_VERSION'"; then
  say "mmcv $MMCV_VERSION with compiled ops already importable"
else
  mkdir -p "$CACHE/wheels"
  wheel=$(ls "$CACHE"/wheels/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    say "compiling mmcv $MMCV_VERSION from source with its ops: 20-45 minutes on 2 cores"
    log="$CACHE/mmcv-build.log"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PYTHON" -m pip wheel -v --no-deps --no-build-isolation \
      -w "$CACHE/wheels" "mmcv==$MMCV_VERSION" >"$log" 2>&1 &
    pid=$!
    start=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
      sleep 30
      step=$(grep -oE '^\[[0-9]+/[0-9]+\]' "$log" | tail -n1 || true)
      say "  mmcv build: $((SECONDS - start)) s elapsed ${step:+, compile step $step} (log: $log)"
    done
    wait "$pid" || { tail -n 40 "$log"; say "mmcv build failed; full log in $log"; exit 1; }
    wheel=$(ls "$CACHE"/wheels/mmcv-$MMCV_VERSION-*.whl | head -n1)
  fi
  say "installing $wheel"
  "${PIP[@]}" --no-deps "$wheel"
  # mmcv's own runtime requirements (its wheel was installed without them).
  "${PIP[@]}" addict packaging Pillow pyyaml yapf opencv-python
fi

has 'import mmdet; assert mmdet.__version__ == "3.3.0"' || {
  say "installing mmdet 3.3.0"; "${PIP[@]}" mmdet==3.3.0; }

say "runtime and test requirements"
"${PIP[@]}" -r requirements/runtime.txt -r requirements/tests.txt

say "speaq_mm (editable)"
"${PIP[@]}" --no-deps --no-build-isolation -e .
say "done"

#!/usr/bin/env bash
# Idempotent set-up of everything speaq_mm needs, into the Python that runs it ($PYTHON, default python3).
#
#   torch     kept if importable; otherwise the CPU build torch==2.13.0 (GPU users install their torch first)
#   mmengine, mmdet, mmcv at the versions of requirements/constraints.txt; mmcv is compiled from source with
#             its ops (no wheel exists for current torch) and the wheel is cached in $SPEAQ_MM_CACHE (default
#             ~/.cache/speaq_mm), so every later environment on the machine installs it in seconds
#   the rest  requirements/{build,runtime,tests}.txt, then speaq_mm itself in editable mode
#
# Every pip call takes the same constraints (requirements/constraints.txt plus torch==<installed torch>), so
# no step can lift a pin an earlier step relied on: torch 2.13 asks for setuptools>=77.0.3, and without the
# constraint pip would answer with a setuptools that has no pkg_resources, which mmcv's build needs.
# Every step checks first and does nothing when its package is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
CACHE=${SPEAQ_MM_CACHE:-$HOME/.cache/speaq_mm}
CPU_TORCH=2.13.0

say() { printf '[install] %s\n' "$*"; }
has() { "$PYTHON" -c "$1" >/dev/null 2>&1; }
pinned() { sed -n "s/^$1==\([^[:space:]]*\).*/\1/p" requirements/constraints.txt; }
MMCV=$(pinned mmcv) MMENGINE=$(pinned mmengine) MMDET=$(pinned mmdet)

# One probe for the common case: everything already installed, speaq_mm editable from this checkout (run
# outside the checkout, so that only what the install put on sys.path can be imported).
if (cd / && "$PYTHON" - >/dev/null 2>&1) <<PY
import os
import setuptools, pkg_resources, torch, mmengine, mmdet, mmcv, mmcv._ext
import h5py, scipy, matplotlib, pycocotools, pytest, ruff, skimage, tqdm, speaq_mm
import projects.SyntheticMix.synthetic_mix  # the checkout itself is on sys.path (setup.py, package_dir)
assert int(setuptools.__version__.split('.')[0]) < 82
assert (mmcv.__version__, mmengine.__version__, mmdet.__version__) == ('$MMCV', '$MMENGINE', '$MMDET')
assert os.path.realpath(speaq_mm.__file__) == os.path.join(os.path.realpath('$ROOT'), 'speaq_mm', '__init__.py')
PY
then
  say "all dependencies present (torch $("$PYTHON" -c 'import torch; print(torch.__version__)')); nothing to do"
  exit 0
fi

CONSTRAINTS=$(mktemp "${TMPDIR:-/tmp}/speaq_mm-constraints.XXXXXX")
trap 'rm -f "$CONSTRAINTS"' EXIT
cp requirements/constraints.txt "$CONSTRAINTS"
PIP=("$PYTHON" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS")

say "build tools (setuptools<82, wheel, ninja)"
"${PIP[@]}" -r requirements/build.txt

if has 'import torch'; then
  say "keeping installed torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
else
  say "installing torch==$CPU_TORCH (CPU build)"
  "${PIP[@]}" "torch==$CPU_TORCH"
fi
echo "torch==$("$PYTHON" -c 'import torch; print(torch.__version__)')" >>"$CONSTRAINTS"

has "import mmengine; assert mmengine.__version__ == '$MMENGINE'" || {
  say "installing mmengine $MMENGINE"; "${PIP[@]}" "mmengine==$MMENGINE"; }

if has "import mmcv, mmcv._ext; assert mmcv.__version__ == '$MMCV'"; then
  say "mmcv $MMCV with compiled ops already importable"
else
  mkdir -p "$CACHE/wheels"
  wheel=$(ls "$CACHE"/wheels/mmcv-"$MMCV"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    say "compiling mmcv $MMCV from source with its ops: about 15 minutes on 2 idle cores, once per machine"
    log="$CACHE/mmcv-build.log"
    # --no-build-isolation: the build must see this environment's torch and setuptools<82 (an isolated
    # build environment would take the newest setuptools).
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PYTHON" -m pip wheel -v --no-deps --no-build-isolation \
      -c "$CONSTRAINTS" -w "$CACHE/wheels" "mmcv==$MMCV" >"$log" 2>&1 &
    pid=$!
    start=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
      sleep 30
      # ninja prints "[N/M] c++ ..." per compiled file; pip -v indents the lines of the build it runs.
      step=$(grep -oE '^[[:space:]]*\[[0-9]+/[0-9]+\]' "$log" | tail -n1 | tr -d '[:space:]' || true)
      say "  mmcv build: $((SECONDS - start)) s elapsed${step:+, compile step $step} (log: $log)"
    done
    wait "$pid" || { tail -n 40 "$log"; say "mmcv build failed; full log in $log"; exit 1; }
    wheel=$(ls "$CACHE"/wheels/mmcv-"$MMCV"-*.whl | head -n1)
  fi
  say "installing $wheel"
  "${PIP[@]}" --no-deps "$wheel"
  # mmcv's own runtime requirements (its wheel was installed without them).
  "${PIP[@]}" addict packaging Pillow pyyaml yapf opencv-python
fi

has "import mmdet; assert mmdet.__version__ == '$MMDET'" || {
  say "installing mmdet $MMDET"; "${PIP[@]}" "mmdet==$MMDET"; }

say "runtime and test requirements"
"${PIP[@]}" -r requirements/runtime.txt -r requirements/tests.txt

say "speaq_mm (editable)"
"${PIP[@]}" --no-deps --no-build-isolation -e .
say "done: setuptools $("$PYTHON" -c 'import setuptools; print(setuptools.__version__)'), torch" \
  "$("$PYTHON" -c 'import torch; print(torch.__version__)'), mmcv $MMCV, mmengine $MMENGINE, mmdet $MMDET"

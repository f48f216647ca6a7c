#!/usr/bin/env bash
# `make synthetic-demo`: the command sequence of docs/synthetic_data.md on the toy data, after `make demo`.
# Plans toy scenes towards the predicate tail, renders them, pseudo-labels them with the demo checkpoint,
# converts the curated labels, fine-tunes the demo model on the real + pseudo-labelled mix with relation weights
# for a short run, and compares the two models per predicate. Everything goes to work_dirs/synthetic
# (removed first when OVERWRITE=1).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
OUT=work_dirs/synthetic
ITERS=${ITERS:-100}
if [ -e "$OUT" ]; then
  if [ "${OVERWRITE:-0}" = 1 ]; then rm -rf "$OUT"; else
    echo "$OUT exists; set OVERWRITE=1 to replace it" >&2; exit 1; fi
fi
CKPT=$("$PYTHON" -c "import json; print(json.load(open('work_dirs/demo/metrics.json'))['checkpoint'])")

# 1. Plan: 300 scenes, predicates drawn ~ count^-1 over the real train split.
"$PYTHON" tools/synthetic/plan_scenes.py data/toy_real --num-scenes 300 --power 1.0 --out $OUT/plan.jsonl
# 2. Generate (the toy stand-in for a text-to-image model; 10 % of the images ignore their plan).
"$PYTHON" tools/misc/make_toy_scenes.py $OUT/images --plan $OUT/plan.jsonl
# 3. Pseudo-label and curate, with the report.
"$PYTHON" tools/synthetic/pseudo_label.py configs/toy/speaq_tiny_toy_mix.py "$CKPT" $OUT/images \
    --plan $OUT/plan.jsonl --out $OUT/labels.json --score-thr 0.05 --topk 10 --entity-iou-thr 0.7 \
    --real data/toy_real --report-dir $OUT/report
# 4. Convert to the VG files, with the real vocabulary.
"$PYTHON" tools/dataset_converters/json_to_vg.py $OUT/labels.json $OUT/vg --image-dir $OUT/images \
    --vocab data/toy_real/VG-SGG-dicts-with-attri.json
# 5. Fine-tune the demo model on the real + pseudo-labelled mix with relation weights (short run).
"$PYTHON" tools/train.py configs/toy/speaq_tiny_toy_pseudo_mix.py --work-dir $OUT/train \
    --cfg-options load_from="$CKPT" train_cfg.max_iters=$ITERS
# 6. Test both models on the toy test split and compare them per predicate.
"$PYTHON" tools/test.py configs/toy/speaq_tiny_toy_mix.py "$CKPT" --work-dir $OUT/test_demo
"$PYTHON" tools/test.py configs/toy/speaq_tiny_toy_pseudo_mix.py $OUT/train/iter_$ITERS.pth --work-dir $OUT/test_pseudo
"$PYTHON" tools/analysis/per_source_report.py $OUT/test_demo/metrics.json $OUT/test_pseudo/metrics.json \
    --labels "make demo" "+ pseudo-labelled" --out-dir $OUT/report
echo "[synthetic-demo] curation report: $OUT/report (curation_report.json, *.png); per-predicate comparison: $OUT/report/per_source_report.png"

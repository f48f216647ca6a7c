# speaq_mm developer targets. PYTHON selects the interpreter everything is installed into.
PYTHON ?= python3
export PYTHON

.PHONY: install test lint bench demo synthetic-demo

install:
	bash tools/install.sh

test: install
	OMP_WAIT_POLICY=PASSIVE $(PYTHON) -m pytest -q tests

# Generates the toy real + synthetic scenes, trains the tiny SpeaQ on their mix, evaluates it (work_dirs/demo).
demo:
	bash tools/demo.sh

# After `make demo`: plan, render, pseudo-label, curate, convert and train on toy synthetic scenes with relation
# weights (docs/synthetic_data.md; work_dirs/synthetic, OVERWRITE=1 to redo).
synthetic-demo:
	bash tools/synthetic/toy_pipeline.sh

lint: install
	$(PYTHON) -m ruff check speaq_mm tools tests configs projects

# Every benchmark of tools/benchmarks/ (about 10 minutes on 2 cores); appends dated tables to docs/benchmarks.md.
bench: install
	$(PYTHON) tools/benchmarks/run_all.py --append-to docs/benchmarks.md

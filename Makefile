# speaq_mm developer targets. PYTHON selects the interpreter everything is installed into.
PYTHON ?= python3
export PYTHON

.PHONY: install test lint bench

install:
	bash tools/install.sh

test: install
	$(PYTHON) -m pytest -q tests

lint: install
	$(PYTHON) -m ruff check speaq_mm tools tests configs projects

# Every benchmark of tools/benchmarks/ (about 10 minutes on 2 cores); appends dated tables to docs/benchmarks.md.
bench: install
	$(PYTHON) tools/benchmarks/run_all.py --append-to docs/benchmarks.md

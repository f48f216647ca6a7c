# speaq_mm developer targets. PYTHON selects the interpreter everything is installed into.
PYTHON ?= python3
export PYTHON

.PHONY: install test lint

install:
	bash tools/install.sh

test: install
	$(PYTHON) -m pytest -q tests

lint: install
	$(PYTHON) -m ruff check speaq_mm tools tests configs projects

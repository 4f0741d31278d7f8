# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# The virtual environment is the project's own; every dependency is pinned in pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := False

.PHONY: install demo test bench clean-data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/dvc repro

test: install
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench

clean-data:
	rm -rf data runs

# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# The virtual environment is the project's own; every dependency is pinned in pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := False

.PHONY: install demo test bench segmenter clean-data

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
	$(BIN)/python bench/run_all.py

# Remakes the shipped default segmenter (weights/yolo11n-seg-synth.{pt,onnx,json}):
# synthetic training and validation trees with their own seeds, then a budgeted fit.
segmenter: install
	mtdepth synth --out data/synth-fit --seed 101 --frames 16 --overwrite
	mtdepth synth --out data/synth-fit-val --seed 202 --frames 3 --overwrite
	mtdepth fit-segmenter

clean-data:
	rm -rf data runs

# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# The virtual environment is the project's own; every dependency is pinned in pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := False

.PHONY: install demo test test-fast lint bench segmenter depth-model results results-ablation results-paper clean-data

# pip's torch wheel is the CUDA build: the environment takes ~6.5 GB, so say so before pip runs out of disk.
$(STAMP): pyproject.toml
	@free=$$(df -Pk . | awk 'NR == 2 {print int($$4 / 1048576)}'); if [ "$$free" -lt 7 ]; then \
	  echo "make: warning: $$free GB free on this disk; $(VENV) needs about 7 GB (torch with its CUDA libraries)" >&2; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The DAG on the demo profile (params.yaml), ending with the two tables the run wrote.
demo: install
	$(BIN)/dvc repro
	@cat runs/report/report.md

# Everything: the linter, then every test (the slow end-to-end files included; .ci/run calls this).
# Two pytest processes (pytest-xdist), one file each at a time, one torch thread each: two processes
# with a thread per core each spin against each other on a 2-core machine.
PYTEST := OMP_NUM_THREADS=1 $(BIN)/pytest -n 2 --dist loadfile
test: install lint
	$(PYTEST)

# The fast lane: every test not marked slow (YOLO, training runs, dvc repro, the wheel, the benches).
test-fast: install
	$(PYTEST) -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/run_all.py

# Remakes the shipped default segmenter (weights/yolo11n-seg-synth.{pt,onnx,json}): segmenter/dvc.yaml
# writes synthetic training and validation trees with their own seeds, then a budgeted fit.
segmenter: install
	$(BIN)/dvc repro segmenter/dvc.yaml
	cp runs/segmenter/yolo11n-seg-synth.pt runs/segmenter/yolo11n-seg-synth.onnx runs/segmenter/yolo11n-seg-synth.json weights/

# Remakes the shipped default depth model (weights/depth-unet-mixed.{pt,onnx,json}): depthmodel/dvc.yaml
# trains the U-Net on IP-Basic's fill on the mixed sparse pattern (and the same schedule on uniform, its
# reference), scores both per pattern, exports ONNX and writes the JSON report (depthmodel/params.yaml).
depth-model: install
	$(BIN)/dvc repro depthmodel/dvc.yaml
	cp runs/depthmodel/train/mixed/best.pt weights/depth-unet-mixed.pt
	cp runs/depthmodel/depth-unet-mixed.onnx runs/depthmodel/depth-unet-mixed.json weights/

clean-data:
	rm -rf data runs

# docs/results.md's results table: the DAG up to `report` on 1,020 synthetic frames at 128x256, as a
# DVC experiment; every learned row uses the default model (completion of IP-Basic's fill, the default
# U-Net channels, twice the demo's) with params.yaml's MT-Depth head (32 / 16 channels: Table 2's
# 128 / 64 cost ~5x the rest of the net on a CPU), 20 epochs a model (about three and a half hours on
# 2 CPU cores, estimated from this round's runs). `make results-ablation` adds the query ablation
# (ablation/dvc.yaml); `make results-paper` is the same data with Table 2's network as written (its
# channels, no fill, absolute output, no kept samples, L2, head 128 / 64) on the schedule its results
# were measured with (15 epochs, lr 1e-3). Interrupted: `dvc repro report` (or `ablation/dvc.yaml`)
# continues it, mid-training included (docs/dag.md).
RESULTS := -S synth.frames=34 -S data.height=128 -S data.width=256
DEFAULT := -S 'model.unet_channels=[16,32,64,128,256]' -S train.epochs=20
PAPER := -S model.prefill=none -S model.output=absolute -S model.keep_sparse=false -S loss.depth_error=l2 \
	-S model.confidence=false -S model.fusion_channels=128 -S model.head_channels=64 -S train.lr=1e-3 \
	-S train.epochs=15
results: install
	$(BIN)/dvc exp run $(RESULTS) $(DEFAULT) report

results-ablation: install
	$(BIN)/dvc exp run $(RESULTS) $(DEFAULT) report ablation/dvc.yaml

results-paper: install
	$(BIN)/dvc exp run $(RESULTS) $(PAPER) report

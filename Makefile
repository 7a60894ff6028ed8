# Two entry points for a newcomer: `make demo` and `make test`.
# Both create .venv on first use; re-running installs only when setup.cfg changes.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= outputs
# What the install takes on disk (the CUDA build of PyTorch alone is about 5 GB; measured 6.6 GiB in all).
NEED_GIB ?= 7

# Fail before a first install that would run out of space half-way, and say what to do
# (an environment that already holds torch only tops up, so it is not checked).
define check-disk
	@if ! ls -d $(VENV)/lib/python*/site-packages/torch >/dev/null 2>&1; then \
		free=$$(df -Pk $(VENV) | awk 'NR == 2 {print int($$4 / 1048576)}'); \
		if [ "$$free" -lt $(NEED_GIB) ]; then \
			echo "error: $$free GiB free on the disk of $(VENV); the install needs about $(NEED_GIB) GiB." >&2; \
			echo "       Free some space, or put the environment on a larger disk: make ... VENV=/larger/disk/venv" >&2; \
			echo "       (without a GPU, the CPU build of PyTorch takes about 200 MB: README, Install)." >&2; \
			exit 1; \
		fi; \
	fi
endef

.PHONY: demo test test-all bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(PY)
	$(check-disk)
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.installed-dev: setup.cfg pyproject.toml | $(PY)
	$(check-disk)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

# The whole path on the built-in photos and dead-leaves images (about 7 minutes on 2 idle cores):
# gallery, shards (built by dri.train when missing), two-stage training, the linear quality head,
# evaluation on held-out crops, prediction.
demo: $(VENV)/.installed
	$(PY) -m degrade.gallery --out $(OUT)/gallery.png
	$(PY) -m dri.train --out $(OUT)/run --shards.path $(OUT)/shards --head.path $(OUT)/shards-head --resume
	$(PY) -m dri.evaluate --checkpoint $(OUT)/run/head/model.pt --dataset pseudo --root $(OUT)/shards \
		--splits 1 --levels 8 --out $(OUT)/evaluation
	$(PY) -m dri.predict --checkpoint $(OUT)/run/head/model.pt samples --out $(OUT)/scores.csv
	@echo
	@echo "gallery:     $(OUT)/gallery.png"
	@echo "shards:      $(OUT)/shards (manifest.json)"
	@echo "training:    $(OUT)/run (stage1/, stage2/: checkpoints, metrics, loss and scatter plots, tensorboard/;"
	@echo "             head/model.pt: the model that scores, with its linear head)"
	@echo "evaluation:  $(OUT)/evaluation/results.json, scatter.png"
	@echo "predictions: $(OUT)/scores.csv"

test: $(VENV)/.installed-dev
	$(PY) -m pytest -m "not slow"

test-all: $(VENV)/.installed-dev
	$(PY) -m pytest

$(VENV)/.installed-bench: setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@ $(VENV)/.installed $(VENV)/.installed-dev

bench: $(VENV)/.installed-bench
	$(PY) benchmarks/bench_degrade.py
	$(PY) benchmarks/bench_datasets.py
	$(PY) benchmarks/bench_shards.py
	$(PY) benchmarks/bench_loader.py
	$(PY) benchmarks/bench_model.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_transfer.py --model dri_iqa_tiny

clean:
	rm -rf $(OUT) .pytest_cache

# Two entry points for a newcomer: `make demo` and `make test`.
# Both create .venv on first use; re-running installs only when setup.cfg changes.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= outputs

.PHONY: demo test test-all bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m degrade.gallery --out $(OUT)/gallery.png
	$(PY) -m pipelines.build_shards --out $(OUT)/shards
	$(PY) -m pipelines.verify_shards $(OUT)/shards

test: $(VENV)/.installed-dev
	$(PY) -m pytest -m "not slow"

test-all: $(VENV)/.installed-dev
	$(PY) -m pytest

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_degrade.py
	$(PY) benchmarks/bench_datasets.py
	$(PY) benchmarks/bench_shards.py
	$(PY) benchmarks/bench_loader.py
	$(PY) benchmarks/bench_model.py

clean:
	rm -rf $(OUT) .pytest_cache

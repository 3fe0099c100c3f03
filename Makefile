# Two commands do everything on a fresh machine:
#   make demo   set up, get Fashion-MNIST, train the main job, print the table and where the results are
#   make test   set up, get Fashion-MNIST, lint and run the test suite (what CI runs)
# and, while working: make test-fast (lint and the unit tests: no apt, no browser, no wheel build, no slow runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
# Where there is no NVIDIA GPU we never want PyPI's multi-GB CUDA build: take the CPU build from a local
# wheel directory (pip's find-links) if one is there, else from PyTorch's CPU index.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup data browser demo test test-fast lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "NVIDIA GPU found: installing the CUDA build of torch $(TORCH_VERSION)"; \
		$(PY) -m pip install -q "torch==$(TORCH_VERSION)"; \
	elif $(PY) -m pip install -q --no-index --no-deps "torch==$(TORCH_VERSION)" 2>/dev/null; then \
		echo "no NVIDIA GPU: installed torch $(TORCH_VERSION) from the local wheel directory"; \
		$(PY) -m pip install -q "torch==$(TORCH_VERSION)"; \
	else \
		echo "no NVIDIA GPU: installing the CPU build of torch $(TORCH_VERSION) from $(TORCH_CPU_INDEX)"; \
		$(PY) -m pip install -q "torch==$(TORCH_VERSION)" --index-url $(TORCH_CPU_INDEX) \
			--extra-index-url https://pypi.org/simple; \
	fi
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

# Fashion-MNIST, the default data set, from Debian's package where apt is available (resdyn also finds the
# files in --data-dir, $$RESDYN_DATA or its cache, and downloads them where the machine can).
data:
	@if [ -d $(FMNIST_DIR) ]; then echo "Fashion-MNIST: $(FMNIST_DIR)"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		($(SUDO) apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
		 || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist)) \
		&& echo "Fashion-MNIST: installed dataset-fashion-mnist"; \
	else echo "no apt-get: resdyn will look in \$$RESDYN_DATA and its cache, then download"; fi

# The main job: ResNet-20, LM-ResNet-20, RevNet-38 and the ODENet on Fashion-MNIST, then the comparison
# report (table in the terminal, runs/demo/report/report.html). On a GPU suites/demo-fashion-mnist (60k
# images, 15 epochs each); on a CPU suites/demo-fashion-mnist-cpu (8k images, 3 epochs: a few minutes on two
# cores). Running it again skips the finished runs and resumes an interrupted one.
DEMO_OUT ?= runs/demo
DEMO_SUITE ?= suites/demo-fashion-mnist
demo: setup data
	@if $(PY) -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then \
		$(PY) -m resdyn compare -c $(DEMO_SUITE) --out $(DEMO_OUT); \
	else \
		$(PY) -m resdyn compare -c $(DEMO_SUITE)-cpu --out $(DEMO_OUT)-cpu; \
	fi

# Headless Chromium and its driver from Debian, for the test that opens report.html in a real browser.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		echo "browser: $$(command -v chromium), $$(command -v chromedriver)"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		($(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
		 || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver)) \
		&& echo "browser: installed chromium and chromium-driver"; \
	else echo "no apt-get: the browser test will be skipped unless chromium and chromedriver are on PATH"; fi

lint: setup
	$(PY) -m ruff check resdyn tests benchmarks

test: setup data browser lint
	$(PY) -m pytest -q

# Tests that need Debian's Fashion-MNIST skip themselves where it is absent. One process per core with one thread
# each (pytest-xdist): the tests are thousands of small operations, which a second thread per process only slows
# (measured on 2 cores: 89 s, against 250 s in one process with two threads).
test-fast: setup lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n auto -m "not slow" --ignore=tests/analysis/test_report_browser.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

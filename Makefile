# The course's two commands: `make book` builds the HTML book, `make test` runs every test.
# Both create .venv and install the package with its dev extras on first use.
# `make test-browser` reads the built book in headless Chromium (Debian's `chromium` package).

PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# The versions this project is tested with; pyproject.toml itself has lower bounds only.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# Notebook kernels load tests/ipython/.../00-block-network.py: no network but loopback.
# One OpenMP thread per process: two test workers on two cores, each with two torch threads,
# spend more time waking thread pools than computing (small models; 5-10x slower measured).
OFFLINE := IPYTHONDIR=$(abspath tests/ipython) OMP_NUM_THREADS=1
export PATH := $(BIN):$(PATH)

.PHONY: install test unit notebooks book test-browser lab lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS) -e '.[dev]'
	touch $(STAMP)

test: lint unit notebooks

unit: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest tests -n 2 --dist loadscope

# Each notebook runs once per `make test && make book`: notebooks/conftest.py puts every notebook that
# passes under nbval into the book's execution cache (_build/.jupyter_cache), and the book renders it
# from there (execute_notebooks: cache); `make book` alone executes what is missing or changed.
notebooks: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest --nbval-lax --nbval-current-env notebooks -n 2 --dist loadscope

book: $(STAMP)
	$(OFFLINE) $(BIN)/jupyter-book build . -W --keep-going
	@echo "The book is in _build/html/index.html"

# The built book in a browser: every page served on loopback and read by headless Chromium, with
# axe-core (npm, the version package-lock.json pins) for accessibility. Builds the book if there is none.
# `make test` runs the same tests when Chromium and a built book are there, and says so when not.
AXE := node_modules/axe-core/axe.min.js

$(AXE): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(AXE)

_build/html/index.html:
	$(MAKE) book

test-browser: $(STAMP) $(AXE) _build/html/index.html
	$(BIN)/python -m pytest tests/browser --require-browser -n 2 --dist loadscope

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

lint: $(STAMP)
	$(BIN)/ruff check companion tests benchmarks notebooks/conftest.py book

clean:
	rm -rf _build

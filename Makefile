# ikou — two commands on a fresh machine: `make demo` and `make test`.
# Everything (virtualenv, install, Cython build) is set up on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ikou-installed
export GX_ANALYTICS_ENABLED := false
export PYTHONHASHSEED := 0

.PHONY: all setup build demo test test-flink test-packaging bench lint clean debug-test browser

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77" wheel "Cython>=3.0,<4"

# The editable install compiles no kernel (IKOU_KERNELS names none): `build` compiles them once,
# in place, where the editable install finds them.
$(STAMP): $(BIN)/python pyproject.toml setup.py
	IKOU_KERNELS=none $(BIN)/python -m pip install -q --no-build-isolation -e '.[test,bench]'
	touch $@

setup: $(STAMP)

# Re-compiles only the kernels whose .pyx changed (cythonize checks timestamps).
build: $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace

demo: build
	$(BIN)/ikou demo --workdir demo-run

# The suite runs on every core (pytest-xdist; tests are independent and use their own folders
# and ports); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto

test: build
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# Opt-in: Beam's FlinkRunner (embedded Flink); fetches the Beam Flink job-server jar once from
# Maven Central into ~/.cache/ikou/flink (IKOU_FLINK_JAR=PATH uses a jar already on disk).
test-flink: build
	IKOU_TEST_FLINK=1 $(BIN)/python -m pytest -q tests/e2e/test_flink.py $(PYTEST_ARGS)

# Opt-in (a minute of compiling): Beam's --setup_file path in a fresh virtualenv, offline.
test-packaging: build
	IKOU_TEST_PACKAGING=1 $(BIN)/python -m pytest -q tests/e2e/test_packaging.py $(PYTEST_ARGS)

# Debian's chromium (and a Japanese font for its screenshots) for the browser tests of the run
# report and Data Docs, installed where missing; without it those tests are skipped, saying so.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y --no-install-recommends chromium fonts-ipafont-gothic \
	  || { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends \
	       chromium fonts-ipafont-gothic; }; }

# The test suite with bounds checking switched back on, to hunt memory errors.
debug-test: $(STAMP)
	IKOU_DEBUG_BUILD=1 $(BIN)/python setup.py -q build_ext --inplace --force
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	IKOU_FORCE_CYTHON=1 $(BIN)/python setup.py -q build_ext --inplace --force; exit $$rc

bench: build
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# mypy reads kernels/ and transforms/ as the installed ikou.kernels / ikou.transforms (setup.py's
# package_dir) through links in build/typecheck/ikou/; what it checks is set in pyproject.toml.
TYPECHECK := build/typecheck/ikou

lint: $(STAMP)
	$(BIN)/ruff check .
	@mkdir -p $(TYPECHECK)
	@for d in kernels transforms; do ln -sfn ../../../$$d $(TYPECHECK)/$$d; done
	$(BIN)/mypy

clean:
	rm -rf build demo-run .pytest_cache .hypothesis
	find kernels -name '*.c' -delete -o -name '*.so' -delete -o -name '*.html' -delete

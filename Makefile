# The two front-door targets (see README.md): `make demo` and `make test`.
# Both run the one-time set-up first (scripts/setup.sh), recorded in .setup-done.
PYTHON ?= python3
MNIST_DIR ?= ../shared/data/mnist

.PHONY: setup demo test test-all

setup: .setup-done

.setup-done: scripts/setup.sh pyproject.toml
	PYTHON=$(PYTHON) bash scripts/setup.sh
	touch $@

demo: setup
	MNIST_DIR=$(MNIST_DIR) bash scripts/demo.sh

# The tests run in up to 4 worker processes (pytest-xdist; one per core, -n auto), each test file on one
# worker (--dist loadfile: a file's module fixtures, e.g. a Verilator build, are made once). On 2 cores the
# suite takes about 23 minutes instead of 36.
PYTEST_WORKERS ?= -n auto --maxprocesses 4 --dist loadfile

test: setup
	$(PYTHON) -m pytest -q $(PYTEST_WORKERS) --durations=30

test-all: setup
	$(PYTHON) -m pytest -q $(PYTEST_WORKERS) -m ''

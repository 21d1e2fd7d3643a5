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

test: setup
	$(PYTHON) -m pytest -q --durations=30

test-all: setup
	$(PYTHON) -m pytest -q -m ''

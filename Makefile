# The two commands of the README: `make demo` (the main job) and `make test`.
# Both set everything up on a fresh machine: a virtual environment in .venv and the Fashion-MNIST files.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: demo test lint setup system-packages lower-bounds

demo: setup system-packages
	$(BIN)/pixelwise demo --overwrite

test: NEED_BROWSER = 1
test: setup system-packages lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

setup: $(STAMP)

# Rebuilt whenever the dependencies change; pip takes torch from the local disk where it lies there.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian packages: Fashion-MNIST's files for the `fashion` dataset (demo and tests) and Chromium to render
# the report in a real browser (tests). Elsewhere: PIXELWISE_FASHION_MNIST=DIR with the four idx .gz files;
# without Chromium the browser test is skipped with its reason.
system-packages:
	@missing=""; \
	[ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ] || [ -n "$$PIXELWISE_FASHION_MNIST" ] || missing="dataset-fashion-mnist"; \
	[ "$(NEED_BROWSER)" != 1 ] || command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages:$$missing"; \
	  (apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq $$missing >/dev/null)) || \
	  echo "note: could not install$$missing; the fashion dataset / browser test will be unavailable"; \
	else \
	  echo "note: missing$$missing; install with 'sudo apt-get install$$missing' (or set PIXELWISE_FASHION_MNIST=DIR)"; \
	fi

# The lower bounds pyproject.toml states, run: every runtime dependency at the lowest release its bound
# allows (tools/lowest_constraints.py), in a virtual environment of its own, then the test suite. About ten
# minutes; not part of `make test`, run it when a dependency or its bound changes.
LOWEST := .venv-lowest
lower-bounds: system-packages
	test -x $(LOWEST)/bin/python || python3 -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install -q --upgrade pip packaging
	$(LOWEST)/bin/python tools/lowest_constraints.py serve onnx > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install -q -e '.[dev]' -c $(LOWEST)/constraints.txt
	NEED_BROWSER=1 $(LOWEST)/bin/python -m pytest -q

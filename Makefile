# The two commands of the README: `make demo` (the main job) and `make test`.
# Both set everything up on a fresh machine: a virtual environment in .venv and the Fashion-MNIST files.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: demo test lint setup fashion-mnist

demo: setup fashion-mnist
	$(BIN)/pixelwise demo

test: setup fashion-mnist lint
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

# Fashion-MNIST comes from Debian's package; elsewhere point PIXELWISE_FASHION_MNIST at the four .gz files.
fashion-mnist:
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ] || [ -n "$$PIXELWISE_FASHION_MNIST" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's dataset-fashion-mnist (31 MB)"; \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null)) || \
	  echo "note: could not install dataset-fashion-mnist; the 'fashion' dataset will be unavailable"; \
	else \
	  echo "note: Fashion-MNIST not found; run 'sudo apt-get install dataset-fashion-mnist' or set PIXELWISE_FASHION_MNIST=DIR (the four idx .gz files)"; \
	fi

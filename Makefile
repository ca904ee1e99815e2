# Two commands do all the set-up on a fresh machine with nothing but Python:
#   make quickstart   the end-to-end quickstart on the embedded default
#   make test         lint + type check + the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch goes in first, on its own: a bare `torch` requirement resolved by pip pulls a multi-GB CUDA
# build. Point TORCH_INDEX at e.g. https://download.pytorch.org/whl/cpu where no local wheel exists.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
# Extras to install with the package; CI adds llamacpp so the GGUF files are checked in llama.cpp.
EXTRAS ?= dev,routing
comma := ,
STAMP := $(VENV)/.largeforge-installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: setup quickstart test lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || \
		$(BIN)/python -m pip install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $@

quickstart: setup
	$(BIN)/largeforge quickstart

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

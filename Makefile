# qi-extractor task runner. `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORPUS ?= ../shared/corpus
MODEL ?= models/default
TRANSCRIPTS ?= $(CORPUS)/transcripts
OUT ?= out
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.DEFAULT_GOAL := help
.PHONY: help install demo test test-slow bench

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The pinned CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP) ## create .venv and install qi-extractor with its dependencies

demo: $(STAMP) ## run the main job on the bundled example transcript with the default model
	$(BIN)/python -m extractor demo

test: $(STAMP) ## run the default test suite (slow training tests excluded)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP) ## run only the slow model-training tests
	$(BIN)/python -m pytest -q -m slow

# qi-extractor task runner. `make help` lists the targets.
#
# `make install` creates .venv with the pinned CPU torch and installs qi-extractor into it
# NON-editably (the way users install it: the packaged model and catalog are used exactly as
# a wheel ships them, and setuptools prints no editable-install notice). Edits to extractor/
# re-install the package (seconds, no dependencies) on the next make target. Tests run on the
# checkout itself (`python -m pytest` puts the working directory first on sys.path).
# Put `extractor` on PATH with `. .venv/bin/activate`; the targets below call .venv/bin/extractor.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps
STAMP := $(VENV)/.installed
CORPUS ?= ../shared/corpus
# Empty = the model shipped inside the package (extractor/data/model).
MODEL ?=
MODEL_ARG = $(if $(MODEL),--model $(MODEL))
TRANSCRIPTS ?= $(CORPUS)/transcripts
OUT ?= out
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.DEFAULT_GOAL := help
.PHONY: help install demo lint test test-slow

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(DEPS): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The pinned CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	# scale (Ray) too: the default suite runs a small Ray test
	$(BIN)/pip install -q '.[dev,review,scale]'
	touch $@

$(STAMP): $(DEPS) $(shell find extractor -type f -not -path '*/__pycache__/*' 2>/dev/null)
	$(BIN)/pip install -q --no-deps --force-reinstall .
	touch $@

install: $(STAMP) ## create .venv (CPU torch 2.13.0) and install qi-extractor into it; then `. .venv/bin/activate`

demo: $(STAMP) ## run the main job on the bundled example transcript with the packaged model
	$(BIN)/extractor demo

lint: $(DEPS) ## ruff and mypy over the code (configured in pyproject.toml)
	$(BIN)/ruff check extractor scripts tests
	$(BIN)/mypy

test: $(STAMP) lint ## lint, then run the default test suite (slow training tests excluded)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP) ## run only the slow model-training tests
	$(BIN)/python -m pytest -q -m slow

.PHONY: segment extract predict review retrain discover evaluate evaluate-cv train
segment: $(STAMP) ## split TRANSCRIPTS into speaker turns -> OUT/turns.jsonl
	$(BIN)/extractor segment $(TRANSCRIPTS) -o $(OUT)/turns.jsonl --force

extract: $(STAMP) ## segment, predict, discover and report over TRANSCRIPTS=dir/ -> OUT/ (report.html, project.qdpx; cached reruns)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/extractor extract $(TRANSCRIPTS) -o $(OUT) $(MODEL_ARG)

predict: $(STAMP) ## classify the turns of TURNS=file.jsonl with MODEL -> OUT/predictions.jsonl
	$(BIN)/extractor predict $(or $(TURNS),$(OUT)/turns.jsonl) $(MODEL_ARG) -o $(OUT)/predictions.jsonl --force

REVIEW_TURNS ?= $(CORPUS)/gold/turns.jsonl
QUEUES ?= $(wildcard annotations/queue/*.jsonl)
REVIEW_ORDER ?= coverage
REVIEW_LIMIT ?= 200
RETRAINED ?= models/retrained
REVIEW_QUEUE ?= $(OUT)/review.jsonl
review: $(STAMP) ## review your extraction OUT/ in the browser at 127.0.0.1:PORT (UI=terminal: in the terminal; answers -> REVIEW_QUEUE)
	@test -f $(OUT)/predictions.jsonl -a -f $(OUT)/turns.jsonl || { echo "error: $(OUT)/predictions.jsonl and $(OUT)/turns.jsonl: expected the output of make extract, found none; run make extract TRANSCRIPTS=dir/ (or give OUT=dir)" >&2; exit 1; }
	$(BIN)/extractor review export $(OUT)/predictions.jsonl -o $(REVIEW_QUEUE) --turns $(OUT)/turns.jsonl --order $(REVIEW_ORDER) --limit $(REVIEW_LIMIT)
	$(BIN)/extractor review $(if $(filter terminal tui,$(UI)),annotate,serve --port $(or $(PORT),8765)) $(REVIEW_QUEUE)

RETRAIN_FROM ?= $(or $(MODEL),default)
RETRAIN_ANSWERS = $(wildcard $(REVIEW_QUEUE)) $(QUEUES)
retrain: $(STAMP) ## refit RETRAIN_FROM (default: the packaged model) on your answers (OUT/review.jsonl, annotations/queue/) -> RETRAINED, in seconds (FINE_TUNE=1: also the LoRA, minutes)
	@test -n "$(strip $(RETRAIN_ANSWERS))" || { echo "error: $(REVIEW_QUEUE), annotations/queue/*.jsonl: expected review answers, found none; run make review first" >&2; exit 1; }
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/extractor train $(CORPUS)/gold/turns.jsonl $(wildcard $(OUT)/turns.jsonl) $(RETRAIN_ANSWERS) -o $(RETRAINED) --from $(RETRAIN_FROM) $(if $(FINE_TUNE),--fine-tune) --force

PREDICTIONS ?= $(OUT)/predictions.jsonl
discover: $(STAMP) ## propose new catalog entries from PREDICTIONS -> OUT/proposals.jsonl + .md
	$(BIN)/extractor discover $(PREDICTIONS) -o $(OUT)/proposals.jsonl --report $(OUT)/proposals.md --force

evaluate: $(STAMP) ## score MODEL on the gold turns beside human coder agreement (training-set figures if it was trained on them)
	$(BIN)/extractor evaluate $(CORPUS)/gold/turns.jsonl $(MODEL_ARG)

evaluate-cv: $(STAMP) ## 5-fold interview-grouped cross-validation (FAST=1: frozen encoder) -> OUT/cv.json
	$(BIN)/extractor evaluate $(CORPUS)/gold/turns.jsonl --cv 5 $(if $(FAST),--fast) --json $(OUT)/cv.json --force

TRAINED ?= extractor/data/model
train: $(STAMP) ## reproduce the packaged model (TRAINED) from CORPUS/gold/turns.jsonl: LoRA fine-tune, seed 42 (FAST=1: frozen encoder)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/extractor train $(CORPUS)/gold/turns.jsonl -o $(TRAINED) $(if $(FAST),--fast) --seed 42 --force

.PHONY: bench-segment bench-extract bench-classify bench-review bench-loop bench-discover bench-engines
bench-segment: $(STAMP) ## time the segmenter on CORPUS and compare its turns with the gold turns
	$(BIN)/python scripts/bench_segment.py --corpus $(CORPUS) --repeat 5 --big-mb 50

bench-extract: $(STAMP) ## time `extract` on TRANSCRIPTS: cold cache, then warm with one transcript edited
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} nice -n 5 $(BIN)/python scripts/bench_extract.py --transcripts $(TRANSCRIPTS) $(MODEL_ARG)

bench-classify: $(STAMP) ## the classifier on CORPUS: grouped CV, corrections stick, learning curve, fit, speed -> out/bench_classify.json (~2 h on 2 cores)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} nice -n 5 $(BIN)/python scripts/bench_classify.py --corpus $(CORPUS)

bench-review: $(STAMP) ## active-learning curves: queue order vs random corrections (frozen encoder, ~1 h on 2 cores)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} nice -n 5 $(BIN)/python scripts/bench_review.py --corpus $(CORPUS)

bench-loop: $(STAMP) ## loop payoff: simulated reviewer answers the queue, answers taught between batches (~5 min on 2 cores)
	OMP_NUM_THREADS=1 nice -n 5 $(BIN)/python scripts/bench_loop.py --corpus $(CORPUS) --out $(OUT)/bench_loop.json

bench-discover: $(STAMP) ## leave-one-category-out discovery benchmark on CORPUS (3 trainings + 14 held-out categories)
	OMP_NUM_THREADS=2 nice -n 5 $(BIN)/python scripts/bench_discover.py --corpus $(CORPUS) --split test --json $(OUT)/bench_discover.json

bench-engines: $(STAMP) ## local vs Ray engine on 100/300/1,000 synthetic transcripts (needs .[scale]; ~1 h on 2 cores)
	$(BIN)/python -c "import ray" 2>/dev/null || { echo "error: ray: expected the scale extra, found none; run $(BIN)/pip install '.[scale]'" >&2; exit 1; }
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} nice -n 5 $(BIN)/python scripts/bench_engines.py --corpus $(CORPUS) --sizes 100 300 1000 --work /tmp/qi-bench --json /tmp/qi-bench/results.json

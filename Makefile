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
	$(BIN)/pip install -q -e '.[dev,review]'
	touch $@

install: $(STAMP) ## create .venv and install qi-extractor with its dependencies

demo: $(STAMP) ## run the main job on the bundled example transcript with the default model
	$(BIN)/python -m extractor demo

test: $(STAMP) ## run the default test suite (slow training tests excluded)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP) ## run only the slow model-training tests
	$(BIN)/python -m pytest -q -m slow

.PHONY: segment bench-segment
segment: $(STAMP) ## split $(TRANSCRIPTS) into speaker turns -> $(OUT)/turns.jsonl
	$(BIN)/python -m extractor segment $(TRANSCRIPTS) -o $(OUT)/turns.jsonl

bench-segment: $(STAMP) ## time the segmenter on $(CORPUS) and compare its turns with the gold turns
	$(BIN)/python scripts/bench_segment.py --corpus $(CORPUS) --repeat 5 --big-mb 50

.PHONY: evaluate evaluate-cv
evaluate: $(STAMP) ## score $(MODEL) on the gold turns beside human coder agreement (training-set figures if it was trained on them)
	$(BIN)/python -m extractor evaluate $(CORPUS)/gold/turns.jsonl --model $(MODEL)

evaluate-cv: $(STAMP) ## 5-fold interview-grouped cross-validation (FAST=1: frozen encoder) -> $(OUT)/cv.json
	$(BIN)/python -m extractor evaluate $(CORPUS)/gold/turns.jsonl --cv 5 $(if $(FAST),--fast) --json $(OUT)/cv.json --force

.PHONY: extract bench-extract
extract: $(STAMP) ## segment, predict, discover and report over TRANSCRIPTS=dir/ -> OUT/ (report.html, project.qdpx; cached reruns)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/python -m extractor extract $(TRANSCRIPTS) -o $(OUT) --model $(MODEL)

bench-extract: $(STAMP) ## time `extract` on TRANSCRIPTS: cold cache, then warm with one transcript edited
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} nice -n 5 $(BIN)/python scripts/bench_extract.py --transcripts $(TRANSCRIPTS) --model $(MODEL)

.PHONY: review retrain bench-review
REVIEW_TURNS ?= $(CORPUS)/gold/turns.jsonl
QUEUE ?= annotations/queue/review.jsonl
QUEUES ?= $(wildcard annotations/queue/*.jsonl)
REVIEW_ORDER ?= uncertainty
REVIEW_LIMIT ?= 200
RETRAINED ?= models/retrained
REVIEW_QUEUE ?= $(OUT)/review.jsonl
review: $(STAMP) ## review your extraction OUT/ in the browser at 127.0.0.1:PORT (UI=terminal: in the terminal; answers -> REVIEW_QUEUE)
	@test -f $(OUT)/predictions.jsonl -a -f $(OUT)/turns.jsonl || { echo "error: $(OUT)/predictions.jsonl and $(OUT)/turns.jsonl: expected the output of make extract, found none; run make extract TRANSCRIPTS=dir/ (or give OUT=dir)" >&2; exit 1; }
	$(BIN)/python -m extractor review export $(OUT)/predictions.jsonl -o $(REVIEW_QUEUE) --turns $(OUT)/turns.jsonl --order $(REVIEW_ORDER) --limit $(REVIEW_LIMIT)
	$(BIN)/python -m extractor review $(if $(filter terminal tui,$(UI)),annotate,serve --port $(or $(PORT),8765)) $(REVIEW_QUEUE)

retrain: $(STAMP) ## validate annotations/queue/*.jsonl, train RETRAINED on gold labels + corrections (FAST=1: frozen encoder)
	@test -n "$(QUEUES)" || { echo "error: no review queue in annotations/queue/; run make review first" >&2; exit 1; }
	$(BIN)/python -m extractor review validate $(QUEUES) --turns $(REVIEW_TURNS)
	$(BIN)/python -m extractor train $(CORPUS)/gold/turns.jsonl $(QUEUES) -o $(RETRAINED) $(if $(FAST),--fast) --force

bench-review: $(STAMP) ## active-learning curves: queue order vs random corrections (frozen encoder, ~1 h on 2 cores)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} nice -n 5 $(BIN)/python scripts/bench_review.py --corpus $(CORPUS)

.PHONY: train predict bench-classify
train: $(STAMP) ## reproduce models/default from $(CORPUS)/gold/turns.jsonl (frozen encoder, seed 42; FINE_TUNE=1: LoRA)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/python -m extractor train $(CORPUS)/gold/turns.jsonl -o $(MODEL) $(if $(FINE_TUNE),,--fast) --seed 42 --force

predict: $(STAMP) ## classify the turns of TURNS=file.jsonl with MODEL -> $(OUT)/predictions.jsonl
	$(BIN)/python -m extractor predict $(or $(TURNS),$(OUT)/turns.jsonl) --model $(MODEL) -o $(OUT)/predictions.jsonl --force

bench-classify: $(STAMP) ## interview-grouped CV of TF-IDF, frozen embeddings and the classifier on $(CORPUS) (~1 h on 2 cores)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} QI_EMBED_CACHE=.cache/emb nice -n 5 $(BIN)/python scripts/bench_classify.py --corpus $(CORPUS)

.PHONY: discover bench-discover
discover: $(STAMP) ## propose new catalog entries from PREDICTIONS (default $(OUT)/predictions.jsonl) -> $(OUT)/proposals.jsonl + .md
	$(BIN)/python -m extractor discover $(or $(PREDICTIONS),$(OUT)/predictions.jsonl) -o $(OUT)/proposals.jsonl --report $(OUT)/proposals.md

bench-discover: $(STAMP) ## leave-one-category-out discovery benchmark on $(CORPUS) (10 trainings, ~30 min on a busy 2-core box)
	OMP_NUM_THREADS=2 nice -n 5 $(BIN)/python scripts/bench_discover.py --corpus $(CORPUS) --json $(OUT)/bench_discover.json

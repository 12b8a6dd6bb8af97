#!/usr/bin/env python
"""Does the review loop pay back a reviewer's time? Issue #18's loop-payoff bar, simulated on
the shared corpus.

Protocol (interview-grouped throughout; no interview is ever split):

1. The coded interviews are shuffled (``--split-seed``) and cut into ``--folds`` folds. For
   each fold a model is trained on the other folds' interviews only (frozen encoder, the
   ``train --fast`` mode, on cached embeddings); nothing is tuned on the held-out fold.
2. On the held-out interviews the model predicts every interviewee turn; the review queue is
   ordered as ``extractor review export`` orders it (``--orders``: ``uncertainty`` is its
   default; ``relevance`` / ``gain`` are :mod:`extractor.order`'s alternatives; ``file`` is
   reading the transcripts in order).
3. A simulated reviewer answers the queue in batches of ``--batch`` turns with the gold
   (moderated) labels; between batches the answers are passed as ``taught`` to
   :meth:`IssueClassifier.predict` (what ``extractor predict --corrections`` does), which
   re-scores every other turn with no retrain. ``static`` queues keep the first export's order
   (``review export`` keeps queued tasks in place); ``rerank`` queues re-order the unread
   turns after each batch (the web reviewer).
4. After each batch: the coding = reviewers' answers on the read turns + the model's codes on
   the others, categories micro-F1 against the gold labels (the consensus level is 0.664);
   and the model's categories micro-F1 on the turns not read yet.
   ``none`` is the baseline without a tool: read in file order, unread turns count as "no code".

    nice -n 5 env OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_loop.py
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extractor.catalog import load_catalog  # noqa: E402
from extractor.classify import IssueClassifier, ModelConfig, TrainConfig  # noqa: E402
from extractor.classify.encoder import TurnEncoder  # noqa: E402
from extractor.embed import HashingEmbedder  # noqa: E402
from extractor.jsonl import read_turns, write_json  # noqa: E402
from extractor.types import Labels, Prediction, Turn  # noqa: E402

log = logging.getLogger("bench_loop")
CONSENSUS = 0.664


def micro_f1(gold: Sequence[set], pred: Sequence[set]) -> float:
    """Micro-F1 over (turn, category) pairs."""
    tp = sum(len(g & p) for g, p in zip(gold, pred))
    denom = sum(len(g) for g in gold) + sum(len(p) for p in pred)
    return 2 * tp / denom if denom else 0.0


def make_folds(interviews: Sequence[str], k: int, seed: int) -> list[list[str]]:
    """``k`` interview folds of a seeded shuffle."""
    order = sorted(interviews)
    random.Random(seed).shuffle(order)
    return [sorted(order[j::k]) for j in range(k)]


def fold_model(args, enc, fold: int, train_turns: list[Turn], test_ivs: list[str]) -> IssueClassifier:
    """The fold's model, trained on ``train_turns`` (or read back from an earlier run)."""
    path = args.work / f"fold{fold}"
    meta = path.parent / f"fold{fold}.json"
    if path.is_dir() and meta.is_file() and json.loads(meta.read_text())["test"] == test_ivs:
        return IssueClassifier.load(path, embedder=enc)
    t0 = time.time()
    clf = IssueClassifier(load_catalog(), ModelConfig(base_model=args.encoder),
                          TrainConfig(fine_tune=False, device="cpu", seed=42, threshold_folds=args.threshold_folds),
                          embedder=enc)
    clf.fit(train_turns, progress=sys.stderr.isatty())
    clf.save(path)
    write_json(meta, {"test": test_ivs, "seconds": round(time.time() - t0, 1)})
    log.info("fold %d: trained in %.0fs", fold, time.time() - t0)
    return clf


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--encoder", default=None, help="None = bundled MiniLM; 'hashing' for a quick dry run")
    ap.add_argument("--threshold-folds", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "bench_loop")
    ap.add_argument("--work", type=Path, default=REPO / "out" / "bench_loop")
    ap.add_argument("--train-only", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench_loop.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("extractor.classify").setLevel(logging.WARNING)
    import torch

    torch.set_num_threads(1)
    turns = read_turns(args.corpus / "gold" / "turns.jsonl")
    coded = sorted({t.interview for t in turns if t.labels is not None})
    enc = (HashingEmbedder(dim=64) if args.encoder == "hashing"
           else TurnEncoder(args.encoder, "cpu", 256, cache_dir=args.cache))
    folds = make_folds(coded, args.folds, args.split_seed)
    for j, test_ivs in enumerate(folds):
        train = [t for t in turns if t.interview in coded and t.interview not in test_ivs]
        fold_model(args, enc, j, train, test_ivs)
    if args.train_only:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

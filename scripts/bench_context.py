#!/usr/bin/env python
"""Issue #18 item 6 lever, measured in interview-grouped CV: does smoothing a turn's category
scores with its neighbours' (the model "finds the right passage but often not the right turn")
raise held-out categories micro-F1?

Per outer fold (``bench_loop``'s folds and fold models): inner 3-fold CV over the training
interviews gives out-of-fold scores; the smoothing strength ``a`` (P' = (1 - a) P + a max(P of
the previous and next interviewee turn)) and a global threshold factor ``m`` are chosen there;
the outer held-out interviews are scored once with the chosen values, against the model as is
and against ``m`` alone (is it the smoothing or just the threshold shift?).

    nice -n 5 env OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_context.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import bench_loop as B  # noqa: E402

from extractor.classify.encoder import TurnEncoder  # noqa: E402
from extractor.classify.teach import TeachSession  # noqa: E402
from extractor.jsonl import read_turns  # noqa: E402

STRENGTHS = (0.0, 0.15, 0.3, 0.45)
FACTORS = (0.8, 0.9, 1.0, 1.1, 1.25)


def scored(clf, turns) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(category probabilities, gold 0/1, prev, next, the model's category thresholds) of the
    interviewee turns of ``turns``."""
    s = TeachSession(clf, turns, evidence=False)
    nc = len(clf.catalog_.category_ids)
    P = s.probabilities()[:, :nc]
    ids = clf.catalog_.category_ids
    G = np.array([[c in t.labels.categories for c in ids] for t in s.ie], dtype=bool)
    return P, G, s.features.prev, s.features.nxt, np.asarray(clf.thresholds_)[:nc]


def smooth(P: np.ndarray, prev: np.ndarray, nxt: np.ndarray, a: float) -> np.ndarray:
    zero = np.zeros(P.shape[1], P.dtype)
    nb = np.maximum(np.stack([P[r] if r >= 0 else zero for r in prev]),
                    np.stack([P[r] if r >= 0 else zero for r in nxt])) if len(P) else P
    return (1 - a) * P + a * nb


def f1(G: np.ndarray, D: np.ndarray) -> float:
    tp = float((G & D).sum())
    return 2 * tp / float(G.sum() + D.sum()) if G.sum() + D.sum() else 0.0


def best(parts, strengths, factors) -> tuple[float, float]:
    """(a, m) of the best pooled micro-F1 over ``parts`` [(P, G, prev, next, thresholds)]."""
    score = {}
    for a, m in itertools.product(strengths, factors):
        G = np.concatenate([p[1] for p in parts])
        D = np.concatenate([smooth(p[0], p[2], p[3], a) >= p[4] * m for p in parts])
        score[(a, m)] = f1(G, D)
    return max(score, key=lambda k: (score[k], -k[0], -abs(k[1] - 1)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "bench_loop")
    ap.add_argument("--work", type=Path, default=REPO / "out" / "bench_context")
    ap.add_argument("--outer", type=Path, default=REPO / "out" / "bench_loop", help="bench_loop's fold models")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    turns = read_turns(args.corpus / "gold" / "turns.jsonl")
    coded = sorted({t.interview for t in turns if t.labels is not None})
    enc = TurnEncoder(None, "cpu", 256, cache_dir=args.cache)
    rows = []
    for j, test_ivs in enumerate(B.make_folds(coded, 4, args.split_seed)):
        train_ivs = [iv for iv in coded if iv not in test_ivs]
        inner = []
        for k, inner_test in enumerate(B.make_folds(train_ivs, 3, 100 + j)):
            ns = argparse.Namespace(work=args.work / f"outer{j}", encoder=None, threshold_folds=3)
            fit_on = [t for t in turns if t.interview in train_ivs and t.interview not in inner_test]
            clf = B.fold_model(ns, enc, k, fit_on, inner_test)
            inner.append(scored(clf, [t for t in turns if t.interview in inner_test]))
        outer = B.fold_model(argparse.Namespace(work=args.outer, encoder=None, threshold_folds=3), enc, j, [], test_ivs)
        a, m = best(inner, STRENGTHS, FACTORS)
        _, m_only = best(inner, (0.0,), FACTORS)
        P, G, prev, nxt, th = scored(outer, [t for t in turns if t.interview in test_ivs])
        row = {"fold": j, "a": a, "m": m, "m_only": m_only, "as_is": round(f1(G, P >= th), 4),
               "threshold_only": round(f1(G, P >= th * m_only), 4),
               "smoothed": round(f1(G, smooth(P, prev, nxt, a) >= th * m), 4)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    for key in ("as_is", "threshold_only", "smoothed"):
        print(key, round(float(np.mean([r[key] for r in rows])), 4))
    return 0


if __name__ == "__main__":
    sys.exit(main())

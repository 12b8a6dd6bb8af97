#!/usr/bin/env python
"""Does the review queue order help? Active-learning curves on the shared corpus.

Protocol (interview-grouped throughout; no interview is ever split):

1. The coded interviews are shuffled (``--split-seed``) and halved: half A trains the
   start model; half B supplies the "corrections" and the test interviews.
2. B is cut into ``--folds`` interview-grouped folds. For fold j, the test set is B_j and
   the pool is B minus B_j. The start model is trained on A (pool turns are passed without
   labels: context only).
3. A strategy picks ``--step`` pool turns at a time; their gold labels are added as review
   corrections (``review.apply_corrections``), the model is retrained, and micro-F1 on the
   test interviews is measured, up to ``--budget`` corrections. Strategies: the queue
   orders of ``extractor review export`` (``uncertainty``, ``quality``) computed from the
   current model's predictions on the pool, and ``random`` (``--seeds``).

The test interviews are never trained on and never supply corrections; thresholds are
tuned by the classifier on its own training data only. One frozen encoder
(``TurnEncoder(cache_dir=--cache)``) is shared by every fit, so each text is encoded once and
its vectors are kept on disk for later runs (``extractor.embed.EmbeddingCache``).

    nice -n 5 env OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_review.py
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from extractor import review  # noqa: E402
from extractor.catalog import load_catalog  # noqa: E402
from extractor.classify import IssueClassifier, ModelConfig, TrainConfig  # noqa: E402
from extractor.classify.encoder import TurnEncoder  # noqa: E402
from extractor.embed import EmbeddingCache, HashingEmbedder  # noqa: E402
from extractor.jsonl import read_turns, write_json  # noqa: E402
from extractor.types import MITIGATION, Prediction  # noqa: E402

log = logging.getLogger("bench_review")


def micro_f1(Y: np.ndarray, P: np.ndarray) -> float:
    tp = float((Y & P).sum())
    denom = float(Y.sum() + P.sum())
    return 2 * tp / denom if denom else 0.0


def seed_cache(enc: TurnEncoder, roots: list[Path]) -> int:
    """Copy the shards of other benchmarks' embedding caches of this same encoder (same
    fingerprint) into ``enc``'s cache; shard names are content hashes, so a copy is never stale.
    Returns the number of files copied."""
    ours = enc.disk_cache()
    copied = 0
    for root in roots:
        theirs = EmbeddingCache(root, enc.fingerprint)
        if theirs.dir == ours.dir or not theirs.dir.is_dir():
            continue
        ours.dir.mkdir(parents=True, exist_ok=True)
        for shard in sorted(theirs.dir.glob("*.npz")) + [theirs.dir / "meta.json"]:  # meta: the dimension
            if shard.is_file() and not (ours.dir / shard.name).exists():
                shutil.copyfile(shard, ours.dir / shard.name)  # a damaged copy is dropped by the cache
                copied += 1
    return copied


class Bench:
    def __init__(self, args):
        self.args = args
        self.catalog = load_catalog()
        self.model_config = ModelConfig(base_model=args.encoder)
        self.train_config = TrainConfig(fine_tune=False, device="cpu", seed=42, threshold_folds=args.threshold_folds)
        # one frozen encoder for every fit: its memory and disk caches encode each text once
        self.enc = (HashingEmbedder(dim=64) if args.encoder == "hashing" else
                    TurnEncoder(args.encoder, "cpu", self.model_config.max_length, cache_dir=args.cache))
        self.fits = 0

    def fit(self, turns):
        clf = IssueClassifier(self.catalog, self.model_config, self.train_config, embedder=self.enc)
        clf.fit(turns, progress=self.fits == 0)  # the first fit encodes most texts
        self.fits += 1
        return clf

    def thresholds(self, clf) -> dict[str, float]:
        ids = [*clf.catalog_.category_ids, *clf.catalog_.phase_ids, MITIGATION]
        return dict(zip(ids, np.asarray(clf.thresholds_, dtype=float).tolist()))

    def proba(self, clf, turns) -> tuple[np.ndarray, list]:
        """(probabilities over categories+phases+mitigation, interviewee turns) of ``turns``."""
        pr = clf.predict_proba(turns)
        P = np.concatenate([pr["categories"], pr["phases"], pr["mitigation"][:, None]], axis=1)
        return P, [t for t in turns if t.is_interviewee]

    def evaluate(self, clf, test_turns) -> dict[str, float]:
        P, ie = self.proba(clf, test_turns)
        th = np.asarray(clf.thresholds_)
        nc, npz = len(self.catalog.category_ids), len(self.catalog.phase_ids)
        pred = P >= th[None, :]
        gold = np.zeros_like(pred)
        cats, phases = self.catalog.category_ids, self.catalog.phase_ids
        for r, t in enumerate(ie):
            for c in t.labels.categories:
                if c in cats:
                    gold[r, cats.index(c)] = True
            for p in t.labels.phases:
                if p in phases:
                    gold[r, nc + phases.index(p)] = True
            gold[r, -1] = t.labels.mitigation
        return {"categories": round(micro_f1(gold[:, :nc], pred[:, :nc]), 4),
                "phases": round(micro_f1(gold[:, nc:nc + npz], pred[:, nc:nc + npz]), 4)}

    def predictions(self, clf, turns) -> list[Prediction]:
        P, ie = self.proba(clf, turns)
        ids = [*self.catalog.category_ids, *self.catalog.phase_ids, MITIGATION]
        th = np.asarray(clf.thresholds_)
        nc, npz = len(self.catalog.category_ids), len(self.catalog.phase_ids)
        out = []
        for r, t in enumerate(ie):
            on = P[r] >= th
            out.append(Prediction(t.interview, t.turn, t.id,
                                  categories=tuple(c for j, c in enumerate(ids[:nc]) if on[j]),
                                  phases=tuple(p for j, p in enumerate(ids[nc:nc + npz]) if on[nc + j]),
                                  mitigation=bool(on[-1]), scores=dict(zip(ids, P[r].tolist()))))
        return out


def report(paths: list[Path]) -> int:
    """Pool the runs of several result files (e.g. two halvings) into one table."""
    runs = [r for p in paths for r in json.loads(Path(p).read_text())["runs"]]
    steps = [c["corrections"] for c in runs[0]["curve"]]
    strategies = list(dict.fromkeys(r["strategy"] for r in runs))
    # Only folds every strategy finished (a run cut short leaves partial folds behind).
    per_fold: dict[tuple, set] = {}
    for r in runs:
        per_fold.setdefault(tuple(r["test"]), set()).add(r["strategy"])
    complete = {f for f, st in per_fold.items() if st == set(strategies)}
    runs = [r for r in runs if tuple(r["test"]) in complete]
    folds = sorted(complete)
    print(f"{len(folds)} test folds from {len(paths)} file(s); mean micro-F1 on the test interviews\n")
    for metric in ("categories", "phases"):
        print(f"| {metric} micro-F1 | runs | " + " | ".join(str(n) for n in steps) + " | change 0->" + f"{steps[-1]} |")
        print("|---|---|" + "---|" * (len(steps) + 1))
        for st in strategies:
            rs = [r for r in runs if r["strategy"] == st]
            means = [float(np.mean([r["curve"][k][metric] for r in rs])) for k in range(len(steps))]
            gains = [r["curve"][-1][metric] - r["curve"][0][metric] for r in rs]
            print(f"| {st} | {len(rs)} | " + " | ".join(f"{m:.3f}" for m in means)
                  + f" | {np.mean(gains):+.3f} (sd {np.std(gains):.3f}) |")
        print()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--step", type=int, default=50)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--swap", action="store_true", help="also run with the halves A and B swapped")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of the random strategy")
    ap.add_argument("--strategies", nargs="+", default=["uncertainty", "random", "quality"])
    ap.add_argument("--encoder", default=None, help="None = bundled MiniLM; 'hashing' for a quick dry run")
    ap.add_argument("--threshold-folds", type=int, default=2,
                    help="inner folds the classifier tunes thresholds on (its default is 5; 2 keeps the many fits cheap)")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "bench_review",
                    help="embedding cache directory (extractor.embed.EmbeddingCache, keyed by the encoder)")
    ap.add_argument("--seed-cache", type=Path, nargs="*", default=[REPO / ".cache" / "bench_discover"],
                    help="read-only embedding cache directories of other runs (e.g. bench_discover's) to start "
                         "from: their vectors of this same encoder are copied into --cache")
    ap.add_argument("--oracle", choices=["review", "gold"], default="review",
                    help="review: chosen turns get their gold labels as review corrections (label_source "
                         "'review', a 'no label' is a full negative); gold: they keep the gold file's "
                         "label_source, so never-coded turns stay weak negatives as in ordinary training")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench_review.json")
    ap.add_argument("--report", type=Path, nargs="+", default=None,
                    help="only pool the runs of earlier result files into one table")
    args = ap.parse_args(argv)
    if args.report:
        return report(args.report)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for name in ("extractor.classify",):
        logging.getLogger(name).setLevel(logging.WARNING)
    import torch

    # The heads are tiny full-batch problems: on a shared 2-core box one torch thread is
    # 4-18x faster than two (measured), since two threads mostly wait for each other.
    torch.set_num_threads(args.threads)

    t0 = time.time()
    turns = read_turns(args.corpus / "gold" / "turns.jsonl")
    coded = sorted({t.interview for t in turns if t.labels is not None})
    by_iv = {iv: [t for t in turns if t.interview == iv] for iv in coded}
    order = coded[:]
    random.Random(args.split_seed).shuffle(order)
    half = len(order) // 2
    splits = [(order[:half], order[half:])]
    if args.swap:
        splits.append((order[half:], order[:half]))

    bench = Bench(args)
    if isinstance(bench.enc, TurnEncoder):
        n = seed_cache(bench.enc, args.seed_cache)
        log.info("embedding cache %s%s", bench.enc.disk_cache().dir, f" (+{n} files from --seed-cache)" if n else "")

    steps = list(range(0, args.budget + 1, args.step))
    runs = []
    for s_idx, (A, B) in enumerate(splits):
        folds = [B[j::args.folds] for j in range(args.folds)]
        for j, test_ivs in enumerate(folds):
            pool_ivs = [iv for iv in B if iv not in test_ivs]
            train_base = [t for iv in A for t in by_iv[iv]]
            pool_turns = [t for iv in pool_ivs for t in by_iv[iv]]
            unlabeled_pool = [replace(t, labels=None, label_source=None) for t in pool_turns]
            gold_by_id = {t.id: t.labels for t in pool_turns if t.is_interviewee and t.labels is not None}
            test_turns = [t for iv in test_ivs for t in by_iv[iv]]
            start = bench.fit(train_base + unlabeled_pool)
            f0 = bench.evaluate(start, test_turns)
            log.info("split %d fold %d: A=%d B-pool=%d test=%d interviews, pool %d labelled turns; start F1 %s",
                     s_idx, j, len(A), len(pool_ivs), len(test_ivs), len(gold_by_id), f0)
            plan = [(s, seed) for s in args.strategies for seed in (args.seeds if s == "random" else [None])]
            for strategy, seed in plan:
                chosen: list[str] = []
                curve = [{"corrections": 0, **f0}]
                clf = start
                for n in steps[1:]:
                    remaining = [t for t in unlabeled_pool if t.is_interviewee and t.id in gold_by_id
                                 and t.id not in chosen]
                    if strategy == "random":
                        rng = random.Random(f"{seed}-{s_idx}-{j}-{n}")
                        pick = [t.id for t in rng.sample(remaining, min(args.step, len(remaining)))]
                    else:
                        preds = [p for p in bench.predictions(clf, unlabeled_pool) if p.id in
                                 {t.id for t in remaining}]
                        idx = review.rank(preds, bench.catalog, strategy, thresholds=bench.thresholds(clf))
                        pick = [preds[i].id for i in idx[: args.step]]
                    chosen += pick
                    corrections = {tid: gold_by_id[tid] for tid in chosen}
                    if args.oracle == "review":
                        train_pool = review.apply_corrections(unlabeled_pool, corrections)
                    else:  # the chosen turns exactly as in the gold file (uncoded ones stay weak negatives)
                        train_pool = [g if g.id in corrections else u for g, u in zip(pool_turns, unlabeled_pool)]
                    clf = bench.fit(train_base + train_pool)
                    curve.append({"corrections": n, **bench.evaluate(clf, test_turns)})
                    log.info("  %s%s n=%d: %s (%d fits, %.0fs)", strategy, "" if seed is None else f"[{seed}]",
                             n, curve[-1], bench.fits, time.time() - t0)
                runs.append({"split": s_idx, "fold": j, "strategy": strategy, "seed": seed,
                             "test": test_ivs, "pool": pool_ivs, "start": A, "curve": curve})
                write_json(args.out, {"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs})

    # Mean curve per strategy (random: over seeds and folds).
    summary = {}
    for strategy in args.strategies:
        rs = [r for r in runs if r["strategy"] == strategy]
        summary[strategy] = {
            metric: [round(float(np.mean([r["curve"][k][metric] for r in rs])), 4) for k in range(len(steps))]
            for metric in ("categories", "phases")}
        summary[strategy]["runs"] = len(rs)
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "steps": steps, "summary": summary,
              "fits": bench.fits, "seconds": round(time.time() - t0), "runs": runs}
    write_json(args.out, result)
    print("| strategy | runs | " + " | ".join(f"{n}" for n in steps) + " |")
    print("|---|---|" + "---|" * len(steps))
    for strategy, s in summary.items():
        print(f"| {strategy} (categories) | {s['runs']} | " + " | ".join(f"{v:.3f}" for v in s["categories"]) + " |")
    for strategy, s in summary.items():
        print(f"| {strategy} (phases) | {s['runs']} | " + " | ".join(f"{v:.3f}" for v in s["phases"]) + " |")
    if isinstance(bench.enc, TurnEncoder):
        disk = bench.enc.disk_cache()
        log.info("embedding cache: %d vectors read, %d computed", disk.hits, disk.misses)
    print(f"{bench.fits} fits in {time.time() - t0:.0f}s; details in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Does the review loop pay back a reviewer's time? Issue #18's loop-payoff bar, simulated on
the shared corpus.

Protocol (interview-grouped throughout; no interview is ever split):

1. The coded interviews are shuffled (``--split-seed``) and cut into ``--folds`` folds. For
   each fold a model is trained on the other folds' interviews only (frozen encoder, the
   ``train --fast`` mode, on cached embeddings); nothing is tuned on the held-out fold.
2. On the held-out interviews the model predicts every interviewee turn; the review queue is
   ordered as ``extractor review export`` orders it (``--strategies``: ``gain`` is its
   default, ``gain`` the same
   without anticipating teaching, ``uncertainty`` the former default; ``spreadS`` / ``coverS`` are greedy orders
   that anticipate teaching, :func:`extractor.review.ordering.spread_priorities` with strength
   ``S``; ``none`` is reading the transcripts in order).
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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extractor import review  # noqa: E402
from extractor.catalog import load_catalog  # noqa: E402
from extractor.classify import IssueClassifier, ModelConfig, TrainConfig  # noqa: E402
from extractor.classify.encoder import TurnEncoder  # noqa: E402
from extractor.classify.teach import TeachSession, estimate_neighbour_weights  # noqa: E402
from extractor.embed import HashingEmbedder  # noqa: E402
from extractor.jsonl import read_turns, write_json  # noqa: E402
from extractor.review import ordering  # noqa: E402
from extractor.review.log import QueueLog  # noqa: E402
from extractor.types import Prediction, Turn  # noqa: E402

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


def queue(preds: list[Prediction], catalog, order: str) -> list[str]:
    """Turn ids in the order a reviewer meets them: ``review export``'s orders (the same
    ranking function it writes the queue with), or ``spreadS`` / ``coverS`` (greedy, teaching
    anticipated with strength ``S``, on the expected gain)."""
    if order in review.ORDERS:
        return [preds[i].id for i in review.rank(preds, catalog, order)]
    kind = order.rstrip("0123456789.")
    if kind not in ("spread", "cover"):  # coverS: the `coverage` order with another strength
        raise SystemExit(f"--strategies: expected a review order, spreadS or coverS, found {order!r}")
    value = -review.priorities(preds, catalog, "gain")
    pri = ordering.spread_priorities(preds, value, cover=kind == "cover", strength=float(order[len(kind):] or 1))
    return [preds[i].id for i in sorted(range(len(preds)), key=lambda i: (pri[i], preds[i].interview, preds[i].turn))]


class QueueFile:
    """The reviewer's side through a real queue file: ``review export`` writes it, the reviewer
    answers the first pending tasks (appended lines, as both reviewers write them), and a
    re-export after teaching (``predict --corrections``, then ``review export`` again) re-ranks
    what is left."""

    def __init__(self, path: Path, catalog, turns: Sequence[Turn], order: str):
        self.path, self.catalog, self.turns, self.order = path, catalog, list(turns), order
        path.unlink(missing_ok=True)

    def export(self, preds: list[Prediction]) -> None:
        review.export_queue(preds, self.path, self.catalog, turns=self.turns, order=self.order)

    def answer_next(self, batch: int, labels: dict) -> list[str]:
        view = QueueLog(self.path, self.catalog, "simulated").view
        step = view.pending()[:batch]
        with self.path.open("a", encoding="utf-8") as fh:
            for tid in step:
                task = dict(view.tasks[tid], answer="accept", annotator="simulated", timestamp=1,
                            accept=review.labels_to_accept(labels[tid]))
                fh.write(json.dumps(task, ensure_ascii=False) + "\n")
        return step


def simulate(session: TeachSession, gold: dict[str, set], labels: dict, order: str, rerank: bool,
             batch: int, teach: bool = True, qfile: QueueFile | None = None) -> list[dict]:
    """Answer the queue ``batch`` turns at a time with the gold labels; after each batch the
    answers are taught (unless ``teach`` is off) and the curve point is measured. With
    ``qfile`` the queue is a real ``review export`` file, re-exported after each batch when
    ``rerank``."""
    catalog = session.model.catalog_
    session.answers.clear()
    preds = session.predictions()
    base = {p.id: set(p.categories) for p in preds}
    ids = [p.id for p in preds]
    todo = ids if order == "none" else queue(preds, catalog, order)
    if qfile is not None:
        qfile.export(preds)
    read: list[str] = []
    curve = []
    while True:
        model = {p.id: set(p.categories) for p in preds}
        done = set(read)
        unread = [i for i in ids if i not in done]
        coding = [gold[i] if i in done else (set() if order == "none" else model[i]) for i in ids]
        curve.append({"read": len(read), "share_read": round(len(read) / len(ids), 4),
                      "coding_f1": round(micro_f1([gold[i] for i in ids], coding), 4),
                      "unread_f1": round(micro_f1([gold[i] for i in unread], [model[i] for i in unread]), 4),
                      "unread_f1_untaught": round(micro_f1([gold[i] for i in unread], [base[i] for i in unread]), 4)})
        if len(read) == len(ids):
            return curve
        step = qfile.answer_next(batch, labels) if qfile else [i for i in todo if i not in done][:batch]
        read += step
        if teach:
            for i in step:
                session.teach(i, labels[i])
            preds = session.predictions()
        if rerank and qfile is not None:
            qfile.export(preds)
        elif rerank and order != "none":
            done = set(read)
            rest = [p for p in preds if p.id not in done]
            todo = read + queue(rest, catalog, order)


def first_reach(curve: list[dict], level: float = CONSENSUS) -> float | None:
    return next((c["share_read"] for c in curve if c["coding_f1"] >= level), None)


def at_answers(curve: list[dict], n: int) -> dict:
    return next(c for c in curve if c["read"] >= n)


def summarise(runs: list[dict], batch: int) -> dict:
    """Per strategy: share read at consensus (per fold and mean), unread F1 at 0 and after 90
    answers, and the mean curve on a grid of shares read."""
    out = {}
    grid = np.round(np.arange(0, 1.0001, 0.05), 2)
    for name in dict.fromkeys(r["strategy"] for r in runs):
        rs = [r for r in runs if r["strategy"] == name]
        reach = [first_reach(r["curve"]) for r in rs]
        u0 = [r["curve"][0]["unread_f1"] for r in rs]
        u90 = [at_answers(r["curve"], 90)["unread_f1"] for r in rs]
        u90b = [at_answers(r["curve"], 90)["unread_f1_untaught"] for r in rs]
        curves = [np.interp(grid, [c["share_read"] for c in r["curve"]], [c["coding_f1"] for c in r["curve"]])
                  for r in rs]
        out[name] = {"share_read_at_consensus": reach,
                     "mean_share_read_at_consensus": round(float(np.mean(reach)), 4) if None not in reach else None,
                     "unread_f1_0": round(float(np.mean(u0)), 4), "unread_f1_90": round(float(np.mean(u90)), 4),
                     "unread_f1_90_untaught": round(float(np.mean(u90b)), 4),
                     "curve": {f"{g:.2f}": round(float(v), 4) for g, v in zip(grid, np.mean(curves, axis=0))}}
    return out


def print_tables(summary: dict) -> None:
    print("| strategy | share read at 0.664 (mean; per fold) | unread F1 at 0 | after 90 answers | "
          "after 90, untaught model |")
    print("|---|---|---|---|---|")
    for name, s in summary.items():
        per = ", ".join("-" if x is None else f"{x:.0%}" for x in s["share_read_at_consensus"])
        mean = "-" if s["mean_share_read_at_consensus"] is None else f"{s['mean_share_read_at_consensus']:.1%}"
        print(f"| {name} | {mean} ({per}) | {s['unread_f1_0']:.3f} | {s['unread_f1_90']:.3f} | "
              f"{s['unread_f1_90_untaught']:.3f} |")
    grid = list(next(iter(summary.values()))["curve"])
    print("\n| coding F1 at share read | " + " | ".join(f"{float(g):.0%}" for g in grid[::2]) + " |")
    print("|---|" + "---|" * len(grid[::2]))
    for name, s in summary.items():
        print(f"| {name} | " + " | ".join(f"{s['curve'][g]:.3f}" for g in grid[::2]) + " |")


def time_session(clf: IssueClassifier, turns: list[Turn], n: int, answers: int, repeat: int = 5) -> dict:
    """Seconds of :meth:`TeachSession.predictions` on the first ``n`` interviewee turns of
    ``turns`` (with their interviews' other turns) after ``answers`` answers: best of ``repeat``."""
    ie = [t for t in turns if t.is_interviewee and t.labels is not None][:n]
    keep = {t.id for t in ie}
    ivs = {t.interview for t in ie}
    sel = [t for t in turns if t.interview in ivs and (not t.is_interviewee or t.id in keep)]
    out: dict = {"turns": len(ie), "answers": answers}
    for evidence in (False, True):
        s = TeachSession(clf, sel, evidence=evidence)
        for t in ie[:answers]:
            s.teach(t.id, t.labels)
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            s.predictions()
            best = min(best, time.perf_counter() - t0)
        out[f"predictions_s{'_evidence' if evidence else ''}"] = round(best, 3)
        out["setup_s"] = round(s.setup_seconds, 1)
    return out


def run_folds(args, enc, turns: list[Turn], coded: list[str], folds: list[list[str]]) -> list[dict]:
    """Per fold: its model (trained on the other folds), then every strategy's curve."""
    runs: list[dict] = []
    t0 = time.time()
    for j, test_ivs in enumerate(folds):
        train = [t for t in turns if t.interview in coded and t.interview not in test_ivs]
        clf = fold_model(args, enc, j, train, test_ivs)
        if args.train_only:
            continue
        test = [t for t in turns if t.interview in test_ivs]
        weights = estimate_neighbour_weights(train)  # from the training interviews only
        session = TeachSession(clf, test, evidence=False, neighbour_weights=weights)
        log.info("fold %d: neighbour weights %s (training interviews)", j, weights)
        labels = {t.id: t.labels for t in session.ie}
        gold = {i: set(lab.categories) for i, lab in labels.items() if lab is not None}
        for name in args.strategies:
            order = name.split("+")[0].split("-")[0].split("@")[0]
            qfile = QueueFile(args.work / "queue.jsonl", clf.catalog_, test, order) if (
                "@queue" in name or "+reexport" in name) else None
            curve = simulate(session, gold, labels, order, "+rerank" in name or "+reexport" in name, args.batch,
                             teach="-noteach" not in name and order != "none", qfile=qfile)
            runs.append({"fold": j, "test": test_ivs, "strategy": name, "turns": len(labels), "curve": curve})
            log.info("fold %d %s: consensus at %s, unread F1 %.3f -> %.3f (%.0fs)", j, name, first_reach(curve),
                     curve[0]["unread_f1"], at_answers(curve, 90)["unread_f1"], time.time() - t0)
        write_json(args.out, {"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs})
    return runs


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
    ap.add_argument("--time", type=int, default=0, metavar="N",
                    help="only time TeachSession.predictions() on N turns after 100 answers (fold 0's model)")
    ap.add_argument("--strategies", nargs="+",
                    default=["none", "uncertainty", "uncertainty-noteach", "uncertainty+rerank", "gain", "gain+rerank",
                             "coverage", "coverage+rerank", "coverage-noteach", "coverage+rerank-noteach"],
                    help="ORDER[+rerank|+reexport|@queue][-noteach]: none (file order, no tool), a `review export` "
                         "order, or spreadS / coverS; +rerank re-orders the unread turns after each batch; "
                         "@queue reads a real `review export` queue file, +reexport re-exports it after each batch")
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
    if args.time:
        clf = fold_model(args, enc, 0, [], folds[0])
        print(json.dumps(time_session(clf, [t for t in turns if t.interview in coded], args.time, 100)))
        return 0
    t0 = time.time()
    runs = run_folds(args, enc, turns, coded, folds)
    if args.train_only:
        return 0
    summary = summarise(runs, args.batch)
    write_json(args.out, {"args": {k: str(v) for k, v in vars(args).items()}, "folds": folds, "summary": summary,
                          "runs": runs, "seconds": round(time.time() - t0)})
    print_tables(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the issue classifier on the corpus, through the public API only.

Outer folds: the moderated interviews in 3 interview-grouped folds; each fold's model trains on
all other labelled interviews (moderated or coders' labels) with the default settings and is
scored on the held-out moderated labels. Nothing of a test fold is seen while training: every
threshold and regularisation strength is picked on inner folds of the training part.

Parts (``--parts``, comma list):
  cv     grouped CV: categories / phases micro P/R/F1, strict and with a +-1-turn tolerance,
         interview level; calibration (share of turns with any category, each phase,
         mitigation; phase labels per turn) against the gold; evidence lengths
  stick  fold 0: a queue of 40 held-out turns (review.rank order) answered with the gold
         labels, training on the other interviews + those answers: exact-match rate of the
         new model's own categories on the 40 turns (cold training, and warm from the fold model)
  curve  fold 0 with 25% / 50% / 100% of the training interviews (learning curve)
  fit    the --model's figures on its own training turns (training-set fit)
  speed  --model: predict turns/s (cold), load time; peak RSS of this process

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 python scripts/bench_classify.py --corpus ../shared/corpus
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from extractor.catalog import load_catalog
from extractor.classify import IssueClassifier, TrainConfig, group_folds
from extractor.jsonl import read_turns, write_json
from extractor.review import rank

log = logging.getLogger("bench_classify")


def prf(tp: float, n_pred: float, n_gold: float) -> dict:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"p": round(p, 4), "r": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "predicted": int(n_pred), "gold": int(n_gold)}


def score(gold_turns, preds, field: str, tolerance: int = 0) -> dict:
    """Micro P/R/F1 of one label space; with ``tolerance`` a label counts where the other side
    has it on an interviewee turn up to that many turns away (same interview)."""
    pid = {p.id: p for p in preds}
    seq = defaultdict(list)
    for t in gold_turns:
        seq[t.interview].append(t)
    tp_p = tp_g = n_pred = n_gold = 0
    for ts in seq.values():
        G = [set(getattr(t.labels, field)) for t in ts]
        P = [set(getattr(pid[t.id], field)) for t in ts]
        for i in range(len(ts)):
            near = range(max(0, i - tolerance), min(len(ts), i + tolerance + 1))
            n_pred += len(P[i])
            n_gold += len(G[i])
            tp_p += sum(1 for x in P[i] if any(x in G[j] for j in near))
            tp_g += sum(1 for x in G[i] if any(x in P[j] for j in near))
    p = tp_p / n_pred if n_pred else 0.0
    r = tp_g / n_gold if n_gold else 0.0
    return {"p": round(p, 4), "r": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "predicted": n_pred, "gold": n_gold}


def interview_level(gold_turns, preds) -> dict:
    pid = {p.id: p for p in preds}
    G, P = defaultdict(set), defaultdict(set)
    for t in gold_turns:
        G[t.interview] |= set(t.labels.categories)
        P[t.interview] |= set(pid[t.id].categories)
    tp = sum(len(G[i] & P[i]) for i in G)
    return prf(tp, sum(len(P[i]) for i in G), sum(len(G[i]) for i in G))


def calibration(gold_turns, preds, phases) -> dict:
    pid = {p.id: p for p in preds}
    n = len(gold_turns)

    def share(f):
        return [round(sum(1 for t in gold_turns if f(pid[t.id])) / n, 4), round(sum(1 for t in gold_turns if f(t.labels)) / n, 4)]

    out = {"any_category": share(lambda x: bool(x.categories)), "mitigation": share(lambda x: x.mitigation),
           "phase_labels": [sum(len(pid[t.id].phases) for t in gold_turns), sum(len(t.labels.phases) for t in gold_turns)]}
    out["phases"] = {ph: share(lambda x, ph=ph: ph in x.phases) for ph in phases}
    out["note"] = "[predicted, gold]"
    return out


def evidence_stats(preds) -> dict:
    from extractor.classify.evidence import words

    lens = [(words(e), words(p.text)) for p in preds for e in p.evidence.values()]
    long_turns = [w for w, n in lens if n >= 20]
    return {"spans": len(lens), "under_6_words_in_turns_of_20_or_more": sum(1 for w in long_turns if w < 6),
            "under_8_words_where_turn_has_8": sum(1 for w, n in lens if n >= 8 and w < 8),
            "median_words": float(np.median([w for w, _ in lens])) if lens else 0.0}


def error_analysis(gold_turns, preds, cats) -> dict:
    """Per category: support, F1, what its misses were predicted as; and how far ranking vs
    relevance (does the turn carry any issue?) explain the errors."""
    pid = {p.id: p for p in preds}
    per = {}
    for c in cats:
        g = [c in t.labels.categories for t in gold_turns]
        p = [c in pid[t.id].categories for t in gold_turns]
        tp = sum(a and b for a, b in zip(g, p))
        missed = Counter(x for t, a, b in zip(gold_turns, g, p) if a and not b for x in pid[t.id].categories)
        per[c] = {**prf(tp, sum(p), sum(g)), "missed_with_no_category": sum(
            1 for t, a, b in zip(gold_turns, g, p) if a and not b and not pid[t.id].categories),
            "missed_predicted_as": dict(missed.most_common(3))}
    issue = [bool(t.labels.categories) for t in gold_turns]
    flagged = [bool(pid[t.id].categories) for t in gold_turns]
    oracle_tp = sum(len(set(pid[t.id].categories) & set(t.labels.categories)) for t in gold_turns)
    oracle_pred = sum(len(pid[t.id].categories) for t, i in zip(gold_turns, issue) if i)
    top1 = [max(cats, key=lambda c: pid[t.id].scores.get(c, 0)) in t.labels.categories
            for t, i in zip(gold_turns, issue) if i]
    return {"per_category": per,
            "relevance": prf(sum(a and b for a, b in zip(issue, flagged)), sum(flagged), sum(issue)),
            "micro_f1_with_oracle_relevance": prf(oracle_tp, oracle_pred, sum(len(t.labels.categories)
                                                                             for t in gold_turns))["f1"],
            "top1_accuracy_on_issue_turns": round(float(np.mean(top1)), 4) if top1 else 0.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--parts", default="cv,stick,curve,fit,speed")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--fast", action="store_true", help="frozen encoder (TrainConfig(fine_tune=False))")
    ap.add_argument("--steps", type=int, help="adapter steps (default: TrainConfig's)")
    ap.add_argument("--model", type=Path, default=None, help="model for fit/speed (default: the packaged model)")
    ap.add_argument("--out", type=Path, default=Path("out/bench_classify.json"))
    ap.add_argument("--stick-modes", default="warm,cold", help="stick: warm (train --from), cold (full training)")
    ap.add_argument("--fold", type=int, default=None,
                    help="cv: train and predict only this outer fold (run the folds in parallel processes)")
    ap.add_argument("--predictions", type=Path, default=Path("out/bench_cv"),
                    help="cv: each fold's held-out predictions are saved here, and reused when present")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    for name in ("sentence_transformers", "httpx", "transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)
    parts = set(args.parts.split(","))
    catalog = load_catalog()
    kw = {"seed": args.seed, "device": "auto", "fine_tune": not args.fast}
    if args.steps:
        kw["steps"] = args.steps
    tcfg = TrainConfig(**kw)
    turns = read_turns(args.corpus / "gold" / "turns.jsonl")
    by_iv = defaultdict(list)
    for t in turns:
        by_iv[t.interview].append(t)
    labelled = sorted({t.interview for t in turns if t.labels is not None})
    moderated = sorted({t.interview for t in turns if t.label_source == "moderated"})
    fold_ivs = [sorted({moderated[i] for i in f}) for f in group_folds(moderated, args.folds, args.seed)]
    results: dict = {"config": tcfg.to_dict(), "folds": fold_ivs, "machine": "2-core CPU, no GPU",
                     "date": time.strftime("%Y-%m-%d")}
    if args.out.exists():
        results = {**json.loads(args.out.read_text()), **results}

    def gold_of(ivs):
        return [t for iv in ivs for t in by_iv[iv] if t.is_interviewee and t.labels is not None]

    def all_of(ivs):
        return [t for iv in ivs for t in by_iv[iv]]

    def train(ivs, extra=()):
        t0 = time.time()
        clf = IssueClassifier(catalog, train_config=tcfg).fit(all_of(ivs) + list(extra))
        return clf, time.time() - t0

    fold0 = None
    if "cv" in parts or "stick" in parts or "curve" in parts:
        from extractor.jsonl import read_predictions, write_jsonl

        all_gold, all_pred, per_fold = [], [], []
        for k, test_ivs in enumerate(fold_ivs):
            if ("cv" not in parts and k > 0) or (args.fold is not None and k != args.fold):
                continue
            train_ivs = [iv for iv in labelled if iv not in test_ivs]
            args.predictions.mkdir(parents=True, exist_ok=True)
            saved = args.predictions / f"fold{k}.jsonl"
            if saved.is_file() and not ("stick" in parts and k == 0):  # stick needs the fold's model
                clf, secs, preds = None, json.loads(saved.with_suffix(".json").read_text())["train_seconds"], \
                    read_predictions(saved)
            else:
                clf, secs = train(train_ivs)
                preds = clf.predict(all_of(test_ivs))
                write_jsonl(saved, preds)
                write_json(saved.with_suffix(".json"), {"train_seconds": round(secs, 1), "test": test_ivs})
            gold = gold_of(test_ivs)
            if k == 0:
                fold0 = (clf, train_ivs, test_ivs, preds)
            all_gold += gold
            all_pred += preds
            f = {"categories": score(gold, preds, "categories")["f1"], "phases": score(gold, preds, "phases")["f1"],
                 "train_seconds": round(secs, 1)}
            per_fold.append(f)
            log.info("fold %d %s: %s", k, test_ivs, f)
            if "cv" in parts:
                write_json(args.out, {**results, "cv_partial": per_fold})
        if "cv" in parts and args.fold is None:
            phases = catalog.phase_ids
            results["cv"] = {
                "turns": len(all_gold), "per_fold": per_fold,
                "categories": score(all_gold, all_pred, "categories"),
                "phases": score(all_gold, all_pred, "phases"),
                "categories_tolerance_1": score(all_gold, all_pred, "categories", 1),
                "phases_tolerance_1": score(all_gold, all_pred, "phases", 1),
                "interview_level": interview_level(all_gold, all_pred),
                "calibration": calibration(all_gold, all_pred, phases),
                "evidence": evidence_stats(all_pred),
                "error_analysis": error_analysis(all_gold, all_pred, catalog.category_ids)}
            log.info("cv: %s", {k: results["cv"][k] for k in ("categories", "phases", "interview_level")})
            write_json(args.out, results)

    if "stick" in parts:
        clf0, train_ivs, test_ivs, preds = fold0
        gold = {t.id: t for t in gold_of(test_ivs)}
        cand = [p for p in preds if p.id in gold]
        th = {c: float(t) for c, t in zip(catalog.category_ids + catalog.phase_ids + ["mitigation"], clf0.thresholds_)}
        queue = [cand[i] for i in rank(cand, catalog, "uncertainty", thresholds=th)[:40]]
        reviewed = {p.id for p in queue}
        extra = [replace(t, label_source="review") if t.id in reviewed else replace(t, labels=None, label_source=None)
                 for t in all_of(test_ivs)]
        out = {"queue": len(queue), "with_categories": sum(1 for p in queue if gold[p.id].labels.categories)}
        for mode in args.stick_modes.split(","):
            t0 = time.time()
            if mode == "cold":
                clf = IssueClassifier(catalog, train_config=tcfg).fit(all_of(train_ivs) + extra)
            else:
                clf = clf0
                clf.fit(all_of(train_ivs) + extra)
            secs = time.time() - t0
            new = {p.id: p for p in clf.predict(all_of(test_ivs)) if p.id in reviewed}
            same = sum(1 for i in reviewed if set(new[i].categories) == set(gold[i].labels.categories))
            out[mode] = {"exact_match": round(same / len(reviewed), 4), "train_seconds": round(secs, 1)}
            before = sum(1 for p in queue if set(p.categories) == set(gold[p.id].labels.categories))
            out["exact_match_before"] = round(before / len(reviewed), 4)
            log.info("stick %s: %s", mode, out[mode])
            write_json(args.out, {**results, "stick": out})
        results["stick"] = out

    if "curve" in parts:
        clf0, train_ivs, test_ivs, preds = fold0
        gold = gold_of(test_ivs)
        curve = [{"interviews": len(train_ivs), "categories": score(gold, preds, "categories")["f1"],
                  "phases": score(gold, preds, "phases")["f1"]}]
        rng = random.Random(args.seed)
        for frac in (0.5, 0.25):
            sub = sorted(rng.sample(train_ivs, max(2, round(frac * len(train_ivs)))))
            clf, _ = train(sub)
            p = clf.predict(all_of(test_ivs))
            curve.append({"interviews": len(sub), "categories": score(gold, p, "categories")["f1"],
                          "phases": score(gold, p, "phases")["f1"]})
            log.info("curve: %s", curve[-1])
            write_json(args.out, {**results, "curve": curve})
        results["curve"] = sorted(curve, key=lambda r: r["interviews"])

    model_path = args.model
    if "fit" in parts:
        clf = IssueClassifier.load(model_path) if model_path else _packaged()
        gold = gold_of(labelled)
        preds = clf.predict(all_of(labelled), evidence=False)
        pid = {p.id: p for p in preds}
        results["fit"] = {"model": str(model_path or "packaged"), "categories": score(gold, preds, "categories"),
                          "phases": score(gold, preds, "phases"),
                          "exact_match_categories": round(float(np.mean(
                              [set(pid[t.id].categories) == set(t.labels.categories) for t in gold])), 4)}
        log.info("fit: %s", results["fit"]["categories"])
        write_json(args.out, results)

    if "speed" in parts:
        t0 = time.time()
        clf = IssueClassifier.load(model_path) if model_path else _packaged()
        load_s = time.time() - t0
        clf.predict(by_iv[moderated[2]][:4])  # warm-up: spaCy and torch start-up are not per-turn costs
        probe = by_iv[moderated[0]] + by_iv[moderated[1]]
        t0 = time.time()
        preds = clf.predict(probe)
        secs = time.time() - t0
        results["speed"] = {"load_seconds": round(load_s, 1), "turns": len(preds), "seconds": round(secs, 2),
                            "turns_per_second": round(len(preds) / secs, 1)}
        log.info("speed: %s", results["speed"])
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    write_json(args.out, results)
    log.info("wrote %s", args.out)
    return 0


def _packaged() -> IssueClassifier:
    from extractor.resources import packaged_model

    return IssueClassifier.load(packaged_model())


if __name__ == "__main__":
    sys.exit(main())

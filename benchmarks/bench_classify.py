"""Benchmark of the issue classifier on the shared corpus.

Interview-grouped cross-validation: the test folds are the *moderated* interviews (split
into ``--folds`` groups), training uses every other labelled interview (moderated and
coders). Thresholds of every model are tuned on inner interview-grouped folds of the
training part only; nothing is tuned on a test fold.

Models compared: TF-IDF + logistic regression, frozen MiniLM embeddings + logistic
regression, and ``IssueClassifier`` configurations (frozen encoder with context, catalog
features and relevance gate; ``--fine-tune`` adds the LoRA-adapted encoder, slow on CPU).

Also measures training time on the full corpus, prediction throughput (interviewee
turns/s, cold embedding cache) and peak memory, and writes an error analysis of the worst
categories (turn ids only: no corpus text leaves the corpus).

    OMP_NUM_THREADS=2 QI_EMBED_CACHE=.cache/emb python benchmarks/bench_classify.py --corpus ../shared/corpus
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np


from extractor.catalog import load_catalog  # noqa: E402
from extractor.classify import (ClassifierConfig, IssueClassifier, _group_folds, tune_thresholds,  # noqa: E402
                                _Encoder)
from extractor.jsonl import read_turns, write_json  # noqa: E402

log = logging.getLogger("bench_classify")


def label_matrix(turns, ids, field):
    idx = {c: k for k, c in enumerate(ids)}
    Y = np.zeros((len(turns), len(ids)), dtype=np.float32)
    for r, t in enumerate(turns):
        for c in getattr(t.labels, field):
            if c in idx:
                Y[r, idx[c]] = 1
    return Y


def prf(Y, P):
    Y, P = Y.astype(bool), P.astype(bool)
    tp, fp, fn = (Y & P).sum(), (~Y & P).sum(), (Y & ~P).sum()
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": round(float(p), 4), "r": round(float(r), 4), "f1": round(float(f), 4)}


def report(Y, P, ids):
    per = {}
    for j, c in enumerate(ids):
        per[c] = {**prf(Y[:, j], P[:, j]), "support": int(Y[:, j].sum()), "predicted": int(P[:, j].sum())}
    macro = float(np.mean([per[c]["f1"] for c in ids if per[c]["support"] > 0]))
    return {"micro": prf(Y, P), "macro_f1": round(macro, 4), "per_label": per}


# --- baselines: features -> one-vs-rest logistic regression, thresholds on inner folds ---


def fit_lr(X, Y, seed):
    from sklearn.linear_model import LogisticRegression

    models = []
    for j in range(Y.shape[1]):
        y = Y[:, j]
        if y.sum() == 0 or y.sum() == len(y):
            models.append(float(y.mean()))
            continue
        m = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed)
        m.fit(X, y)
        models.append(m)
    return models


def predict_lr(models, X):
    out = np.zeros((X.shape[0], len(models)), dtype=np.float32)
    for j, m in enumerate(models):
        out[:, j] = m if isinstance(m, float) else m.predict_proba(X)[:, 1]
    return out


def baseline_fold(make_features, train_turns, test_turns, Ys, seed, inner_k=5, min_support=8):
    """Fit LR per label space; thresholds from inner grouped folds of the training turns."""
    groups = [t.interview for t in train_turns]
    out = {}
    for space, (Ytr, _) in Ys.items():
        oof = np.zeros_like(Ytr)
        for test in _group_folds(groups, inner_k, seed):
            train = np.setdiff1d(np.arange(len(train_turns)), test)
            Xa, Xb = make_features([train_turns[i] for i in train], [train_turns[i] for i in test])
            oof[test] = predict_lr(fit_lr(Xa, Ytr[train], seed), Xb)
        th = tune_thresholds(Ytr, oof, min_support)
        Xa, Xb = make_features(train_turns, test_turns)
        out[space] = predict_lr(fit_lr(Xa, Ytr, seed), Xb) >= th
    return out


def tfidf_features(a, b):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50000)
    return vec.fit_transform([t.text for t in a]), vec.transform([t.text for t in b])


def make_embedding_features(encoder):
    def feats(a, b):
        return encoder.encode([t.text for t in a]), encoder.encode([t.text for t in b])

    return feats


# --- main -----------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--folds", type=int, default=3, help="outer folds over the moderated interviews")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--models", default="tfidf,frozen-lr,clf", help="comma list: tfidf, frozen-lr, clf, "
                    "clf-heads, clf-nogate, clf-nocatalog, clf-noctx, clf-ft")
    ap.add_argument("--out", type=Path, default=Path("out/bench_classify.json"))
    ap.add_argument("--ft-epochs", type=int, default=2, help="clf-ft: LoRA epochs per outer fold")
    ap.add_argument("--ft-minutes", type=float, default=12.0, help="clf-ft: time cap of each LoRA fine-tune")
    ap.add_argument("--no-speed", action="store_true", help="skip the throughput measurement")
    ap.add_argument("--model", type=Path, default=Path("models/default"), help="model whose throughput is measured")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    catalog = load_catalog()
    cats, phases = catalog.category_ids, catalog.phase_ids
    all_turns = read_turns(args.corpus / "gold" / "turns.jsonl")
    by_iv = defaultdict(list)
    for t in all_turns:
        by_iv[t.interview].append(t)
    labelled = sorted({t.interview for t in all_turns if t.labels is not None})
    moderated = sorted({t.interview for t in all_turns if t.label_source == "moderated"})
    folds = _group_folds(moderated, args.folds, args.seed)
    fold_ivs = [[moderated[i] for i in f] for f in folds]
    log.info("outer folds (moderated test interviews): %s", fold_ivs)

    def ie(ivs):
        return [t for iv in ivs for t in by_iv[iv] if t.is_interviewee and t.labels is not None]

    results: dict = {"folds": fold_ivs, "models": {}}
    gold_all = {"categories": [], "phases": []}
    preds_all: dict = defaultdict(lambda: {"categories": [], "phases": []})
    test_ids: list[str] = []
    scores_all: dict = defaultdict(list)
    timings: dict = defaultdict(float)
    encoder = _Encoder(None, "cpu", 256)
    models = args.models.split(",")
    for k, test_ivs in enumerate(fold_ivs):
        train_ivs = [iv for iv in labelled if iv not in test_ivs]
        tr, te = ie(train_ivs), ie(test_ivs)
        test_ids += [t.id for t in te]
        Ys = {"categories": (label_matrix(tr, cats, "categories"), label_matrix(te, cats, "categories")),
              "phases": (label_matrix(tr, phases, "phases"), label_matrix(te, phases, "phases"))}
        for space in Ys:
            gold_all[space].append(Ys[space][1])
        log.info("fold %d: %d train turns, %d test turns", k, len(tr), len(te))
        for name in models:
            t0 = time.time()
            if name == "tfidf":
                out = baseline_fold(tfidf_features, tr, te, Ys, args.seed)
            elif name == "frozen-lr":
                out = baseline_fold(make_embedding_features(encoder), tr, te, Ys, args.seed)
            elif name.startswith("clf"):
                kw = {"seed": args.seed, "device": "cpu"}
                if name == "clf-nogate":
                    kw["gate"] = False
                if name == "clf-nocatalog":
                    kw.update(use_catalog=False, category_scorer="heads")
                if name == "clf-heads":
                    kw["category_scorer"] = "heads"
                if name == "clf-noctx":
                    kw.update(use_context=False, use_question=False)
                if name == "clf-ft":
                    kw.update(fine_tune=True, epochs=args.ft_epochs, max_train_minutes=args.ft_minutes)
                clf = IssueClassifier(catalog, ClassifierConfig(**kw))
                clf.fit([t for iv in train_ivs for t in by_iv[iv]])
                preds = clf.predict([t for iv in test_ivs for t in by_iv[iv]], evidence=False)
                pid = {p.id: p for p in preds}
                out = {"categories": np.array([[c in pid[t.id].categories for c in cats] for t in te]),
                       "phases": np.array([[p in pid[t.id].phases for p in phases] for t in te])}
                scores_all[name].append(np.array([[pid[t.id].scores[c] for c in cats] for t in te]))
            else:
                raise SystemExit(f"unknown model {name}")
            timings[name] += time.time() - t0
            for space in out:
                preds_all[name][space].append(out[space])
            f = {s: prf(Ys[s][1], out[s])["f1"] for s in out}
            log.info("fold %d %-14s categories %.3f phases %.3f (%.0fs)", k, name, f["categories"], f["phases"],
                     time.time() - t0)

    gold = {s: np.concatenate(v) for s, v in gold_all.items()}
    for name in models:
        P = {s: np.concatenate(v) for s, v in preds_all[name].items()}
        results["models"][name] = {
            "categories": report(gold["categories"], P["categories"], cats),
            "phases": report(gold["phases"], P["phases"], phases),
            "cv_seconds": round(timings[name], 1),
        }
        # error analysis: worst categories with support >= 5
        per = results["models"][name]["categories"]["per_label"]
        worst = sorted((c for c in cats if per[c]["support"] >= 5), key=lambda c: per[c]["f1"])[:6]
        Yc, Pc = gold["categories"].astype(bool), P["categories"].astype(bool)
        analysis = {}
        for c in worst:
            j = cats.index(c)
            fn_rows = np.flatnonzero(Yc[:, j] & ~Pc[:, j])
            fp_rows = np.flatnonzero(~Yc[:, j] & Pc[:, j])
            confused = Counter(cats[m] for r in fn_rows for m in np.flatnonzero(Pc[r]))
            fp_gold = Counter(cats[m] for r in fp_rows for m in np.flatnonzero(Yc[r]))
            analysis[c] = {
                **per[c],
                "missed_predicted_as": dict(confused.most_common(3)),
                "missed_with_no_category": int(sum(1 for r in fn_rows if not Pc[r].any())),
                "false_alarms_on_issue_free_turns": int(sum(1 for r in fp_rows if not Yc[r].any())),
                "false_alarms_gold_was": dict(fp_gold.most_common(3)),
                "example_missed_turn_ids": [test_ids[r] for r in fn_rows[:3]],
            }
        results["models"][name]["error_analysis"] = analysis
        if scores_all[name]:
            # where the errors come from: ranking (is a gold category first?) or relevance
            # (with an oracle that names the issue-bearing turns, what would the same
            # predictions score?)
            S = np.concatenate(scores_all[name])
            issue = Yc.any(axis=1)
            results["models"][name]["diagnostics"] = {
                "top1_accuracy_on_issue_turns": round(float(Yc[issue, S[issue].argmax(axis=1)].mean()), 4),
                "micro_f1_with_oracle_relevance": prf(Yc, Pc & issue[:, None])["f1"],
                "predicted_turns_with_a_category": int(Pc.any(axis=1).sum()),
                "gold_turns_with_a_category": int(issue.sum()),
            }
        m = results["models"][name]
        log.info("%-14s categories micro-F1 %.3f (macro %.3f) | phases micro-F1 %.3f", name,
                 m["categories"]["micro"]["f1"], m["categories"]["macro_f1"], m["phases"]["micro"]["f1"])

    if not args.no_speed:
        # cold-cache prediction throughput of the saved model on two moderated interviews
        os.environ.pop("QI_EMBED_CACHE", None)
        t0 = time.time()
        clf = IssueClassifier.load(args.model, device="cpu")
        load_s = time.time() - t0
        probe = by_iv[moderated[0]] + by_iv[moderated[1]]
        clf.predict(by_iv[moderated[2]][:4])  # warm-up: spaCy and torch start-up are not per-turn costs
        clf._get_encoder().clear()
        t0 = time.time()
        preds = clf.predict(probe)
        pred_s = time.time() - t0
        results["speed"] = {
            "model": str(args.model),
            "load_seconds": round(load_s, 1),
            "predict_turns": len(preds),
            "predict_seconds": round(pred_s, 2),
            "turns_per_second": round(len(preds) / pred_s, 1),
            "train_seconds_in_card": clf.card_.get("training", {}).get("seconds"),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
            "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        }
        log.info("speed: %s", results["speed"])
    write_json(args.out, results)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

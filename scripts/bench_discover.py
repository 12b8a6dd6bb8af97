"""Discovery benchmarks on the shared corpus.

1. Leave-one-category-out (LOCO): for each of the 10 largest categories, train the classifier
   (frozen MiniLM + heads, ``TrainConfig(fine_tune=False)``) on all labelled interviews with
   a catalog that lacks the category, predict the same interviews, run discovery, and check
   whether some proposal recovers the hidden category (precision >= 0.4 and recall >= 0.25
   against the interviewee turns labelled with it). Baseline: the same unmatched pool cut into
   random clusters of the same sizes (several seeds).
2. ``--timing``: wall time of discovery on all 31 interviews (encoder loaded and warmed up first,
   so model loading is excluded), and of predict + discover.

Usage (from the repo root)::

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 nice -n 5 .venv/bin/python scripts/bench_discover.py --json .cache/bench_discover/loco.json
    .venv/bin/python scripts/bench_discover.py --categories dev      # categories ranked 11-16, for choosing defaults
    .venv/bin/python scripts/bench_discover.py --timing --categories none

One frozen encoder (``TurnEncoder(cache_dir=.cache/bench_discover)``) serves every training and
the discovery runs, so each text is encoded once; its vectors stay in that directory's
``extractor.embed.EmbeddingCache`` for later runs, beside the cached predictions (never committed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]

from extractor.catalog import load_catalog  # noqa: E402
from extractor.classify import IssueClassifier, ModelConfig, TrainConfig  # noqa: E402
from extractor.classify.encoder import TurnEncoder  # noqa: E402
from extractor.discover import DiscoverConfig, run_discovery  # noqa: E402
from extractor.jsonl import read_jsonl, read_turns, write_jsonl  # noqa: E402
from extractor.types import Prediction  # noqa: E402

log = logging.getLogger("bench_discover")
CACHE = REPO / ".cache" / "bench_discover"


def without_category(turns, cat: str) -> list:
    """``turns`` with ``cat`` removed from their labels (the classifier refuses ids outside its
    catalog); a turn labelled with ``cat`` only becomes a turn without issue categories."""
    return [replace(t, labels=replace(t.labels, categories=tuple(c for c in t.labels.categories if c != cat)))
            if t.labels is not None and cat in t.labels.categories else t for t in turns]


def code_version() -> str:
    """Hash of the classifier's source: a code change must not reuse old cached predictions."""
    h = hashlib.sha1()
    for f in sorted((REPO / "extractor" / "classify").glob("*.py")):
        h.update(f.name.encode() + b"\x00" + f.read_bytes())
    return h.hexdigest()


def predictions_from(clf, turns) -> list[Prediction]:
    """Predictions via ``predict_proba`` (``predict`` clears the encoder cache between batches)."""
    pr = clf.predict_proba(turns)
    cats = clf.catalog_.category_ids
    th = clf.thresholds_[: len(cats)]
    ie = [t for t in turns if t.is_interviewee]
    out = []
    for k, t in enumerate(ie):
        pc = pr["categories"][k]
        out.append(Prediction(interview=t.interview, turn=t.turn, id=t.id,
                              categories=tuple(c for j, c in enumerate(cats) if pc[j] >= th[j]), phases=(),
                              mitigation=False, scores={c: float(pc[j]) for j, c in enumerate(cats)},
                              text=t.text, question=t.question))
    return out


def pr_of(members, gold: set[str]) -> tuple[float, float]:
    hit = len(set(members) & gold)
    return hit / max(1, len(members)), hit / max(1, len(gold))


def best_of(clusters, gold: set[str]) -> dict:
    """The recovering cluster with the best F1, else the best-F1 cluster overall."""
    best = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "recovered": False, "index": None}
    for i, members in enumerate(clusters):
        p, r = pr_of(members, gold)
        f = 2 * p * r / (p + r) if p + r else 0.0
        rec = p >= 0.4 and r >= 0.25
        if (rec, f) > (best["recovered"], best["f1"]):
            best = {"precision": p, "recall": r, "f1": f, "recovered": rec, "index": i}
    return best


def random_baseline(pool: list[str], proposals, gold: set[str], seeds: int) -> dict:
    """Random clusters of the proposals' cluster sizes; each theme is the union of its
    clusters' random counterparts (the same hierarchy, random members)."""
    rec, ps, rs = [], [], []
    clusters_in = [p for p in proposals if p.level != "theme"]
    for s in range(seeds):
        rng = np.random.default_rng(1000 + s)
        perm = list(rng.permutation(pool))
        clusters, off, by_parent = [], 0, {}
        for p in clusters_in:
            members = perm[off: off + p.size]
            off += p.size
            clusters.append(members)
            by_parent.setdefault(p.parent, []).extend(members)
        clusters += [by_parent.get(p.id, []) for p in proposals if p.level == "theme"]
        b = best_of(clusters, gold)
        rec.append(b["recovered"])
        ps.append(b["precision"])
        rs.append(b["recall"])
    return {"recovered_rate": float(np.mean(rec)) if rec else 0.0, "precision": float(np.mean(ps)) if ps else 0.0,
            "recall": float(np.mean(rs)) if rs else 0.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "corpus"))
    ap.add_argument("--categories", default="top10",
                    help="top10 (ranks 1-10, the bar), dev (ranks 11-16, for choosing defaults), none, or ids a,b,c")
    ap.add_argument("--seeds", type=int, default=5, help="random-baseline seeds")
    ap.add_argument("--method", choices=["agglomerative", "hdbscan"], default=None)
    ap.add_argument("--min-cluster-size", type=int, default=None)
    ap.add_argument("--cluster-ratio", type=float, default=None)
    ap.add_argument("--no-question", action="store_true", help="embed the turn without its question")
    ap.add_argument("--match-threshold", type=float, default=None)
    ap.add_argument("--sweep", action="store_true", help="compare discovery settings on the cached predictions")
    ap.add_argument("--json", help="write all figures here")
    ap.add_argument("--timing", action="store_true", help="time discovery on all 31 interviews")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("extractor.classify", "sentence_transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    cfg_kw = {}
    if args.method:
        cfg_kw["method"] = args.method
    if args.min_cluster_size:
        cfg_kw["min_cluster_size"] = args.min_cluster_size
    if args.cluster_ratio:
        cfg_kw["cluster_ratio"] = args.cluster_ratio
    if args.no_question:
        cfg_kw["question_weight"] = 0.0
    if args.match_threshold is not None:
        cfg_kw["match_threshold"] = args.match_threshold
    dcfg = DiscoverConfig(**cfg_kw)

    corpus = Path(args.corpus)
    turns = read_turns(corpus / "gold" / "turns.jsonl")
    catalog = load_catalog()
    labelled_iv = {t.interview for t in turns if t.labels is not None}
    train = [t for t in turns if t.interview in labelled_iv]
    counts = Counter(c for t in train if t.is_interviewee and t.labels for c in t.labels.categories)
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    if args.categories == "top10":
        hidden = ranked[:10]
    elif args.categories == "dev":
        hidden = ranked[10:16]
    elif args.categories == "none":
        hidden = []
    else:
        hidden = [c.strip() for c in args.categories.split(",") if c.strip()]

    mcfg = ModelConfig()
    # one frozen encoder for every training and for discovery: each text is encoded once
    enc = emb = TurnEncoder(mcfg.base_model, "cpu", mcfg.max_length, cache_dir=CACHE)
    # 3 inner threshold folds instead of 5: the 10 trainings fit in the time a shared 2-core box allows
    tcfg = TrainConfig(fine_tune=False, device="cpu", seed=42, threshold_folds=3)
    results = {"config": {k: v for k, v in dcfg.__dict__.items()}, "categories": []}

    all_preds = {}
    version = code_version()
    for cat in hidden:
        t0 = time.time()
        cat_wo = replace(catalog, categories=tuple(e for e in catalog.categories if e.id != cat))
        # predictions of each leave-one-out classifier are cached, so discovery settings can be
        # compared without retraining (key: hidden category + catalog fingerprint + classifier config)
        key = hashlib.sha1(json.dumps([cat, catalog.fingerprint(), mcfg.to_dict(), tcfg.to_dict(), version],
                                      sort_keys=True).encode()).hexdigest()[:10]
        pfile = CACHE / f"preds-{cat}-{key}.jsonl"
        if pfile.exists():
            preds = [Prediction.from_dict(d) for d in read_jsonl(pfile)]
        else:
            clf = IssueClassifier(cat_wo, mcfg, tcfg, embedder=enc)
            clf.fit(without_category(train, cat), progress=True)
            preds = predictions_from(clf, train)
            write_jsonl(pfile, preds)
        t1 = time.time()
        all_preds[cat] = (preds, cat_wo)
        res = run_discovery(preds, None, cat_wo, emb, dcfg)
        gold = {t.id for t in train if t.is_interviewee and t.labels and cat in t.labels.categories}
        clusters = [p.members for p in res.proposals]
        b = best_of(clusters, gold)
        base = random_baseline(res.unmatched, res.proposals, gold, args.seeds)
        prop = res.proposals[b["index"]] if b["index"] is not None else None
        row = {
            "category": cat, "turns": len(gold), "in_pool": len(gold & set(res.unmatched)),
            "pool": len(res.unmatched), "proposals": len(res.proposals),
            "lost": dict(Counter(res.stage.get(i, "missing") for i in gold)),
            "absorbed_by": dict(Counter(c for p in preds if p.id in gold for c in p.categories).most_common(4)),
            "precision": round(b["precision"], 3), "recall": round(b["recall"], 3), "recovered": b["recovered"],
            "proposal": prop.name if prop else "", "level": prop.level if prop else "", "keywords": list(prop.keywords[:5]) if prop else [],
            "size": prop.size if prop else 0, "n_interviews": prop.n_interviews if prop else 0,
            "nearest": prop.nearest[0]["id"] if prop and prop.nearest else "",
            "baseline": {k: round(v, 3) for k, v in base.items()},
            "seconds_train_predict": round(t1 - t0, 1), "seconds_discover": round(time.time() - t1, 1),
        }
        results["categories"].append(row)
        log.info("%s: P=%.2f R=%.2f %s (%s); pool has %d/%d of its turns; baseline P=%.2f R=%.2f rec=%.1f; "
                 "where its turns went %s; predicted as %s",
                 cat, b["precision"], b["recall"], "RECOVERED" if b["recovered"] else "-", row["proposal"],
                 row["in_pool"], len(gold), base["precision"], base["recall"], base["recovered_rate"], row["lost"],
                 row["absorbed_by"])

    if hidden:
        rows = results["categories"]
        results["recovered"] = sum(r["recovered"] for r in rows)
        results["baseline_recovered_mean"] = round(sum(r["baseline"]["recovered_rate"] for r in rows), 2)
        print(f"\nrecovered {results['recovered']}/{len(rows)}; random baseline {results['baseline_recovered_mean']}"
              f"/{len(rows)} (mean over {args.seeds} seeds)\n")
        print("| Hidden category | Turns | In pool | Proposals | Best proposal | Size | Interviews | P | R | "
              "Recovered | Random P | Random R | Random recovered |")
        print("|---|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---:|")
        for r in rows:
            b = r["baseline"]
            print(f"| {r['category']} | {r['turns']} | {r['in_pool']} | {r['proposals']} | {r['proposal']} | {r['size']} | "
                  f"{r['n_interviews']} | {r['precision']:.2f} | {r['recall']:.2f} | {'yes' if r['recovered'] else 'no'} | "
                  f"{b['precision']:.2f} | {b['recall']:.2f} | {b['recovered_rate']:.1f} |")

    if args.sweep:
        # discovery settings compared on the cached leave-one-out predictions (use on --categories dev)
        grid = [dict(method="agglomerative", cluster_ratio=r, theme_ratio=t, question_weight=q)
                for r in (12, 25) for t in (None, 40.0, 80.0) for q in (0.0, 0.5)]
        grid += [dict(method="hdbscan", min_cluster_size=m, question_weight=q) for m in (5, 10) for q in (0.0, 0.5)]
        results["sweep"] = []
        for g in grid:
            c = DiscoverConfig(**g)
            rec, f1s = 0, []
            for cat, (preds, cat_wo) in all_preds.items():
                res = run_discovery(preds, None, cat_wo, emb, c)
                gold = {t.id for t in train if t.is_interviewee and t.labels and cat in t.labels.categories}
                b = best_of([p.members for p in res.proposals], gold)
                rec += b["recovered"]
                f1s.append(b["f1"])
            results["sweep"].append({**g, "recovered": rec, "mean_best_f1": round(float(np.mean(f1s)), 3)})
            print("sweep", json.dumps(results["sweep"][-1]), flush=True)

    if args.timing:
        from extractor.embed import SentenceTransformerEmbedder

        clf = IssueClassifier(catalog, mcfg, tcfg, embedder=enc)
        clf.fit(train)
        clf.save(CACHE / "model_full")  # for the CLI end-to-end run (segment -> predict -> discover)
        st = SentenceTransformerEmbedder(device="cpu")
        st.encode(["warm up the encoder"])  # model loading excluded from the timings below
        fresh = TurnEncoder(mcfg.base_model, "cpu", mcfg.max_length)  # no caches: encoding is timed
        fresh.encode(["warm up the encoder"])
        fresh.clear()
        clf2 = IssueClassifier.load(CACHE / "model_full", device="cpu", embedder=fresh)
        t0 = time.perf_counter()
        preds = clf2.predict(turns)
        t1 = time.perf_counter()
        res = run_discovery(preds, None, catalog, st, DiscoverConfig())
        t2 = time.perf_counter()
        timing = {"interviews": len({t.interview for t in turns}), "interviewee_turns": len(preds),
                  "unmatched": res.stats.get("unmatched"), "proposals": len(res.proposals),
                  "seconds_predict": round(t1 - t0, 1), "seconds_discover": round(t2 - t1, 1),
                  "cpu_threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0)}
        results["timing"] = timing
        print("timing:", json.dumps(timing))

    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

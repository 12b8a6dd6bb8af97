"""How well do the catalog's texts alone point at the right category? (no training)

For every labelled interviewee turn of the gold file that carries at least one category,
rank the 28 categories by cosine between the turn's embedding and each entry's
``describe()`` text, and report how often a gold category is ranked first / in the top 3,
and the mean reciprocal rank of the best-ranked gold category. ``--baseline names`` ranks
by the category names only, to show what the definitions add.

    .venv/bin/python scripts/catalog_zero_shot.py --gold ../shared/corpus/gold/turns.jsonl

Prints one JSON object; numbers only, no corpus text.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from extractor.catalog import load_catalog
from extractor.embed import make_embedder
from extractor.jsonl import read_turns


def rank_scores(sim: np.ndarray, gold: list[set[int]]) -> dict[str, float]:
    order = np.argsort(-sim, axis=1)
    top1 = top3 = rr = 0.0
    for i, g in enumerate(gold):
        ranks = [int(np.where(order[i] == j)[0][0]) for j in g]
        best = min(ranks)
        top1 += best == 0
        top3 += best < 3
        rr += 1.0 / (best + 1)
    n = len(gold)
    return {"top1": round(top1 / n, 3), "top3": round(top3 / n, 3), "mrr": round(rr / n, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", default="../shared/corpus/gold/turns.jsonl")
    ap.add_argument("--catalog", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cache", default=".cache/embeddings", help="on-disk embedding cache (extractor.embed.EmbeddingCache)")
    args = ap.parse_args()
    catalog = load_catalog(args.catalog)
    ids = catalog.category_ids
    turns = [t for t in read_turns(args.gold) if t.is_interviewee and t.labels and t.labels.categories]
    gold = [{ids.index(c) for c in t.labels.categories if c in ids} for t in turns]
    enc = make_embedder(device=args.device, cache_dir=args.cache)
    X = enc.encode([t.text for t in turns], batch_size=32)
    out = {"turns": len(turns), "categories": len(ids), "catalog": catalog.tag, "encoder": enc.name}
    for name, texts in (("describe", [e.describe() for e in catalog.categories]),
                        ("names", [e.name for e in catalog.categories])):
        D = enc.encode(texts)
        out[name] = rank_scores(X @ D.T, gold)
    chance_top1 = float(np.mean([len(g) / len(ids) for g in gold]))
    out["chance_top1"] = round(chance_top1, 3)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

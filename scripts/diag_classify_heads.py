"""Quick head diagnostics on cached features (grouped OOF over all labelled interviews).

Compares head settings by out-of-fold micro-F1 with thresholds picked on the same OOF
predictions: a relative comparison for development, NOT a test figure (use bench_classify.py).
"""
import sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from extractor.catalog import load_catalog
from extractor.classify import (ClassifierConfig, IssueClassifier, build_targets, fit_heads, head_probs,
                                _group_folds, tune_thresholds, _micro_f1)
from extractor.jsonl import read_turns

turns = read_turns(Path(sys.argv[1]) / "gold" / "turns.jsonl")
labelled = {t.interview for t in turns if t.labels is not None}
turns = [t for t in turns if t.interview in labelled]
cat = load_catalog()
clf = IssueClassifier(cat, ClassifierConfig(device="cpu"))
clf.catalog_ = cat
clf.desc_ = clf._desc_embeddings(cat)
F = clf._features(turns)
ex = [k for k, i in enumerate(F.index) if turns[i].labels is not None]
X = F.X[ex]; et = [turns[F.index[k]] for k in ex]
groups = [t.interview for t in et]
nc, npz = len(cat.category_ids), len(cat.phase_ids)
print("layout", F.layout, X.shape)
def run(name, cols=None, **kw):
    cfg = ClassifierConfig(device="cpu", **kw)
    Y, w, M = build_targets(et, cat, cfg)
    Xs = X if cols is None else X[:, cols]
    oof = np.zeros((len(X), nc + npz + 1)); rel = np.zeros(len(X))
    for test in _group_folds(groups, 5, 42):
        tr = np.setdiff1d(np.arange(len(X)), test)
        h = fit_heads(Xs[tr], Y[tr], w[tr], M[tr], cfg)
        pr = head_probs(h, Xs[test], nc, npz, cfg.gate)
        oof[test] = np.concatenate([pr["categories"], pr["phases"], pr["mitigation"][:, None]], 1)
        rel[test] = pr["relevance"]
    from sklearn.metrics import roc_auc_score
    auc = roc_auc_score(Y[:, nc + npz], rel)
    gc, gp = Y[:, :nc], Y[:, nc:nc + npz]
    tc = tune_thresholds(gc, oof[:, :nc], 8); tp = tune_thresholds(gp, oof[:, nc:nc + npz], 8)
    # top-1 among issue turns: does the right category come first?
    pos = gc.any(1)
    top1 = (gc[pos, oof[pos, :nc].argmax(1)] > 0).mean()
    print(f"{name:28s} relAUC {auc:.3f} top1 {top1:.3f} cat {_micro_f1(gc, oof[:, :nc] >= tc):.3f} "
          f"phase {_micro_f1(gp, oof[:, nc:nc+npz] >= tp):.3f}", flush=True)
L = F.layout
def cols(*names): return np.concatenate([np.arange(*L[n]) for n in names])
for spec in sys.argv[2:]:
    name, _, args = spec.partition(":")
    kw = eval(f"dict({args})")
    c = kw.pop("cols", None)
    run(spec, cols(*c) if c else None, **kw)

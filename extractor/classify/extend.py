"""Catalog entries the model was never trained on (e.g. accepted from discovery) are predicted
at once, with no retrain.

The shared pair scorer scores any (turn, entry) pair from the entry's catalog text: cosines to
its description and prototypes (name, definition, include note, keywords, examples). A new
entry has no labelled turns, so its label features are neutral (:mod:`.teach` gives it the
turn's mean over the trained entries, and a standardised value of 0); its prior is the trained
entries' mean prior and its threshold their median. Answers that carry the new entry (taught at
prediction time) make it a labelled entry like the others. Predictions list such codes in
``Prediction.untrained``; a later retrain learns them from their reviewed turns.

The new catalog must hold every entry the model was trained on (dropping one needs a retrain). The
pair features are standardised across the catalog's entries, so adding entries shifts the
other entries' scores slightly; the same catalog leaves every prediction unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from extractor.catalog import Catalog
from extractor.classify.features import describe
from extractor.classify.heads import Heads
from extractor.classify.scorer import LabelMemory, phase_map, prototype_texts
from extractor.classify.teach import fitted
from extractor.errors import ModelError

if TYPE_CHECKING:
    from extractor.classify.model import IssueClassifier


@dataclass
class SelectedHeads(Heads):
    """The model's heads fed the columns of their training layout: the head input of an
    extended catalog has one turn-to-entry cosine column per entry, the heads know the old ones."""

    cols: np.ndarray = field(default_factory=lambda: np.zeros(0, int))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return super().predict_proba(X[:, self.cols])


def head_columns(dim: int, n_new: int, n_phase: int, old_pos: list[int]) -> np.ndarray:
    """Columns of the trained head input inside the extended one (see ``Features.head_input``:
    E, Q, C, cosines and best-sentence cosines to each category, then to each phase, lengths)."""
    base = np.arange(3 * dim)
    cats = np.array(old_pos, dtype=int)
    start = 3 * dim
    tail = start + 2 * n_new + np.arange(2 * n_phase + 2)
    return np.concatenate([base, start + cats, start + n_new + cats, tail])


def extend_catalog(model: IssueClassifier, catalog: Catalog) -> IssueClassifier:
    """A copy of ``model`` that predicts the categories of ``catalog`` (same phases): trained
    entries as before, new entries from their text (listed in ``untrained_``). The same
    catalog returns ``model`` itself."""
    fit = fitted(model)
    old = fit.catalog
    if catalog.category_ids == old.category_ids:
        return model
    if catalog.phase_ids != old.phase_ids:
        raise ModelError(f"catalog {catalog.tag}: expected the model's phases {old.phase_ids}, found "
                         f"{catalog.phase_ids}; retrain for a catalog with other phases")
    ids = catalog.category_ids
    pos = {c: j for j, c in enumerate(old.category_ids)}
    missing = [c for c in old.category_ids if c not in ids]
    if missing:
        raise ModelError(f"catalog {catalog.tag}: expected every category the model was trained on, found "
                         f"{missing[0]!r} missing; add entries to the model's catalog, or retrain")
    new = [c for c in ids if c not in pos]
    enc = model.get_embedder()
    entries = {e.id: e for e in catalog.categories}
    new_desc = enc.encode([describe(entries[c]) for c in new])
    new_protos = {c: enc.encode(prototype_texts(entries[c]) or [describe(entries[c])]) for c in new}
    k = len(old.category_ids)
    protos = model.protos_ or []
    nc, npz = len(ids), len(old.phase_ids)

    def pick(A: np.ndarray, fill: float) -> np.ndarray:
        """Rows of ``A`` (one per old category) in the new order; ``fill`` for new ones."""
        out = np.full((nc, *A.shape[1:]), fill, dtype=A.dtype)
        for j, c in enumerate(ids):
            if c in pos:
                out[j] = A[pos[c]]
        return out

    m = copy.copy(model)
    m.catalog_ = catalog
    m.cat_desc_ = pick(fit.cat_desc, 0.0)
    m.cat_desc_[[ids.index(c) for c in new]] = new_desc
    m.protos_ = [protos[pos[c]] if c in pos else new_protos[c] for c in ids]
    m.centroids_ = pick(fit.centroids, 0.0)
    mem = fit.memory
    Yc = pick(mem.Y[:, :k].T, 0.0).T
    m.memory_ = LabelMemory(E=mem.E, Y=np.concatenate([Yc, mem.Y[:, k:]], axis=1), floor=mem.floor)
    sc = fit.scorer
    m.scorer_ = replace(sc, log_prior=pick(sc.log_prior, float(sc.log_prior.mean())))
    A = phase_map(catalog)
    A[[ids.index(c) for c in old.category_ids]] = fit.stacker.A
    m.stacker_ = replace(fit.stacker, A=A)
    th = np.asarray(model.thresholds_)
    m.thresholds_ = np.concatenate([pick(th[:k], float(np.median(th[:k]))), th[k:]]).astype(np.float32)
    h = fit.heads
    cols = head_columns(fit.cat_desc.shape[1], nc, npz, [ids.index(c) for c in old.category_ids])
    if isinstance(h, SelectedHeads):  # extending an extended model: compose the selections
        cols = cols[h.cols]
    m.heads_ = SelectedHeads(W=h.W, b=h.b, mean=h.mean, scale=h.scale, cols=cols)
    m.untrained_ = tuple(new)
    m.card_ = {**model.card_, "catalog": catalog.tag, "catalog_fingerprint": catalog.fingerprint(),
               "untrained": list(new)}
    return m

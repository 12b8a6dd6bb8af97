"""Label-aware scoring of (turn, catalog entry) pairs, phases from categories, and the label
memory.

Why: each category has 4-70 labelled turns, so per-category weights over a 384-dim
embedding learn the training interviews' topics (they score worse than chance on a third
of the categories in interview-grouped CV). Here ONE small logistic regression is shared by
all categories; its inputs describe how a turn relates to an entry's catalog text (cosine of
the turn, its best sentence, its interviewer question and its neighbours to the entry's
description and to each of its prototypes: name, definition, include note, keywords,
example utterances), plus the turn's length, the entry's prior and two label features: the
cosine to the centroid of the turns labelled with the entry and to the most similar of them
(a nearest-neighbour memory, so that labels and annotators' corrections move the scores of
their own category and their own turns, not only the shared weights). What it learns
("a strong best-sentence match to an example utterance matters more than a question
match") transfers across categories, including rare ones and entries users add later.

Phases follow from categories (each catalog category names its usual phases): a per-phase
logistic regression combines the phase head's probability with the phases implied by the
category scores (:class:`PhaseStacker`).

The shared scorer has ~30 weights: it generalises across interviews but cannot fit the turns it
was trained on, so what annotators said about a turn would not stick. :class:`LabelMemory`
keeps every labelled turn's embedding and labels; a new turn's probabilities are blended with
the labels of its nearest labelled turn, with a weight that is 0 below ``memory_floor`` cosine
and 1 for the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from extractor.errors import ModelError

N_PAIR_FEATURES = 25  # from the catalog text (pair_features)
N_LABEL_FEATURES = 3  # from the labelled turns (label_features)
SCORER_FILE = "scorer.safetensors"
MEMORY_FILE = "memory.safetensors"


def prototype_texts(entry) -> list[str]:
    """The texts an entry is matched against, one embedding each."""
    texts = [entry.name, entry.definition, entry.include, *entry.keywords, *entry.examples]
    return [t.strip() for t in texts if t and t.strip() and t.strip().upper() != "TODO"]


def _z(S: np.ndarray) -> np.ndarray:
    """Standardise across entries: how much more this entry matches than the others."""
    return (S - S.mean(axis=1, keepdims=True)) / (S.std(axis=1, keepdims=True) + 1e-6)


def _max_over(E: np.ndarray, protos: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([(E @ P.T).max(axis=1) for P in protos], axis=1)


def pair_features(E: np.ndarray, sent_emb: Sequence[np.ndarray], Q: np.ndarray, C: np.ndarray,
                  desc: np.ndarray, protos: Sequence[np.ndarray], n_words: np.ndarray,
                  prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Features of every (turn, entry) pair, shape ``(n_turns, n_entries, N_PAIR_FEATURES)``.

    ``E``, ``Q``, ``C``: L2-normalised embeddings of the turns, their interviewer questions
    and their context (zero rows where absent); ``sent_emb``: per turn, its sentences'
    embeddings; ``desc``: one description embedding per entry; ``protos``: per entry, its
    prototype embeddings; ``prev``/``nxt``: row of the previous/next interviewee turn of the
    same interview, -1 if none.
    """
    n, k = len(E), len(desc)
    if n == 0:
        return np.zeros((0, k, N_PAIR_FEATURES), dtype=np.float32)
    S_t, S_q, S_c = E @ desc.T, Q @ desc.T, C @ desc.T
    S_s = np.stack([(s @ desc.T).max(axis=0) if len(s) else np.zeros(k) for s in sent_emb])
    P_t = _max_over(E, protos)
    P_mean = np.stack([(E @ P.T).mean(axis=1) for P in protos], axis=1)
    P_s = np.stack([np.array([(s @ P.T).max() if len(s) else 0.0 for P in protos]) for s in sent_emb])
    P_q, P_c = _max_over(Q, protos), _max_over(C, protos)

    def shifted(A: np.ndarray, idx: np.ndarray) -> np.ndarray:
        out = np.zeros_like(A)
        ok = idx >= 0
        out[ok] = A[idx[ok]]
        return out

    neighbour = []
    for A in (P_t, P_s, S_t):
        a, b = shifted(A, prev), shifted(A, nxt)
        neighbour += [a, b, np.maximum(a, b)]
    length = np.repeat(np.log1p(n_words.astype(np.float32))[:, None], k, axis=1)
    blocks = [S_t, S_s, S_q, S_c, _z(S_t), _z(S_s), _z(S_q), _z(S_c),
              P_t, P_mean, P_s, P_q, P_c, _z(P_t), _z(P_s), length, *neighbour]
    return np.stack(blocks, axis=2).astype(np.float32)


def label_centroids(E: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Unit-length mean embedding of each entry's positive turns (zero row if none)."""
    S = (Y > 0).astype(np.float32).T @ E
    return (S / np.maximum(np.linalg.norm(S, axis=1, keepdims=True), 1e-9)).astype(np.float32)


def label_features(E: np.ndarray, centroids: np.ndarray, exemplars: np.ndarray, exemplar_labels: np.ndarray,
                   exclude: np.ndarray | None = None) -> np.ndarray:
    """(n, k, N_LABEL_FEATURES): cosine of each turn to each entry's label centroid (raw and
    standardised across entries) and to the entry's most similar labelled turn (0 if none).
    ``exclude[i, m]`` hides exemplar ``m`` from turn ``i`` (its own interview, in training)."""
    S = E @ centroids.T
    X = E @ exemplars.T if len(exemplars) else np.zeros((len(E), 0), np.float32)
    if exclude is not None:
        X = np.where(exclude, -1.0, X)
    nearest = np.zeros_like(S)
    for j in range(S.shape[1]):
        pos = exemplar_labels[:, j] > 0
        if pos.any():
            nearest[:, j] = np.maximum(X[:, pos].max(axis=1), 0.0)
    return np.stack([S, _z(S), nearest], axis=2).astype(np.float32)


def leave_group_out_label_features(E: np.ndarray, Y: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """:func:`label_features` for training turns, each against labels from other interviews
    only (a turn must not vote for itself, nor its interview's topic)."""
    group_of = np.asarray(groups)
    P = (Y > 0).astype(np.float32)
    total = P.T @ E
    pos = P.any(axis=1)
    out = np.zeros((len(E), Y.shape[1], N_LABEL_FEATURES), dtype=np.float32)
    for g in np.unique(group_of):
        rows = group_of == g
        C = total - P[rows].T @ E[rows]
        C = C / np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-9)
        exclude = np.repeat(rows[pos][None, :], rows.sum(), axis=0)
        out[rows] = label_features(E[rows], C, E[pos], P[pos], exclude)
    return out


@dataclass
class PairScorer:
    """Shared logistic regression over pair features plus each entry's log prior."""

    FILES = (SCORER_FILE,)

    coef: np.ndarray  # (N_PAIR_FEATURES + N_LABEL_FEATURES + 1,)
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    log_prior: np.ndarray  # (n_entries,)

    @staticmethod
    def _design(F: np.ndarray, log_prior: np.ndarray) -> np.ndarray:
        prior = np.broadcast_to(log_prior[None, :, None], (F.shape[0], F.shape[1], 1))
        return np.concatenate([F, prior], axis=2).reshape(-1, F.shape[2] + 1)

    @classmethod
    def fit(cls, F: np.ndarray, Y: np.ndarray, w: np.ndarray, *, C: float = 1.0, seed: int = 0) -> PairScorer:
        """``F`` pair (and label) features (n, k, f), ``Y`` labels (n, k), ``w`` per-turn weights."""
        from sklearn.linear_model import LogisticRegression

        n, k = Y.shape
        log_prior = np.log((Y.sum(axis=0) + 1) / (n + 2)).astype(np.float32)
        D = cls._design(F, log_prior)
        mean, scale = D.mean(axis=0), D.std(axis=0)
        scale = np.where(scale < 1e-6, 1.0, scale)
        y = Y.reshape(-1) > 0
        if y.all() or not y.any():  # degenerate toy data: a constant score
            p = np.clip(y.mean(), 1e-3, 1 - 1e-3)
            return cls(np.zeros(D.shape[1], np.float32), float(np.log(p / (1 - p))), mean, scale, log_prior)
        m = LogisticRegression(C=C, max_iter=3000, random_state=seed)
        m.fit((D - mean) / scale, y, sample_weight=np.repeat(w, k))
        return cls(m.coef_[0].astype(np.float32), float(m.intercept_[0]), mean.astype(np.float32),
                   scale.astype(np.float32), log_prior)

    def predict_proba(self, F: np.ndarray) -> np.ndarray:
        z = ((self._design(F, self.log_prior) - self.mean) / self.scale) @ self.coef + self.intercept
        return (1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))).reshape(F.shape[0], F.shape[1]).astype(np.float32)

    def save(self, writer) -> None:
        f32 = np.float32
        writer.tensors(SCORER_FILE, {"pair_coef": self.coef.astype(f32), "pair_intercept": np.array([self.intercept], f32),
                                     "pair_mean": self.mean.astype(f32), "pair_scale": self.scale.astype(f32),
                                     "log_prior": self.log_prior.astype(f32)})

    @classmethod
    def load(cls, reader) -> PairScorer:
        n = N_PAIR_FEATURES + N_LABEL_FEATURES + 1
        scale = reader.tensor(SCORER_FILE, "pair_scale", (n,))
        if (scale <= 0).any():
            raise ModelError(f"{reader.path / SCORER_FILE}: tensor 'pair_scale': expected positive values, found others")
        return cls(coef=reader.tensor(SCORER_FILE, "pair_coef", (n,)),
                   intercept=float(reader.tensor(SCORER_FILE, "pair_intercept", (1,))[0]),
                   mean=reader.tensor(SCORER_FILE, "pair_mean", (n,)), scale=scale,
                   log_prior=reader.tensor(SCORER_FILE, "log_prior", ("categories",)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


@dataclass
class PhaseStacker:
    """Per phase: logistic regression over the phase head's logit and two views of the
    phase implied by the category scores (max and noisy-or over the phase's categories)."""

    FILES = (SCORER_FILE,)

    A: np.ndarray  # (n_categories, n_phases) 0/1: the catalog's category -> phase map
    coef: np.ndarray  # (n_phases, 3)
    intercept: np.ndarray  # (n_phases,)

    @staticmethod
    def _features(A: np.ndarray, P_cat: np.ndarray, P_phase: np.ndarray) -> np.ndarray:
        implied_max = np.stack([(P_cat * A[:, j]).max(axis=1) for j in range(A.shape[1])], axis=1)
        implied_or = 1 - np.exp(np.log1p(-np.clip(P_cat, 0, 0.9999)) @ A)
        return np.stack([_logit(P_phase), _logit(implied_max), _logit(implied_or)], axis=2)

    @classmethod
    def fit(cls, A: np.ndarray, P_cat: np.ndarray, P_phase: np.ndarray, Y: np.ndarray, w: np.ndarray,
            seed: int = 0) -> PhaseStacker:
        from sklearn.linear_model import LogisticRegression

        F = cls._features(A, P_cat, P_phase)
        coef = np.zeros((A.shape[1], 3), np.float32)
        coef[:, 0] = 1.0  # a phase never seen (or always seen) keeps its head's probability
        intercept = np.zeros(A.shape[1], np.float32)
        for j in range(A.shape[1]):
            y = Y[:, j] > 0
            if y.any() and not y.all():
                m = LogisticRegression(C=1.0, max_iter=1000, random_state=seed).fit(F[:, j], y, sample_weight=w)
                coef[j], intercept[j] = m.coef_[0], m.intercept_[0]
        return cls(A=A.astype(np.float32), coef=coef, intercept=intercept)

    def predict_proba(self, P_cat: np.ndarray, P_phase: np.ndarray) -> np.ndarray:
        z = (self._features(self.A, P_cat, P_phase) * self.coef[None]).sum(axis=2) + self.intercept
        return (1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))).astype(np.float32)

    def save(self, writer) -> None:
        f32 = np.float32
        writer.tensors(SCORER_FILE, {"phase_map": self.A.astype(f32), "phase_coef": self.coef.astype(f32),
                                     "phase_intercept": self.intercept.astype(f32)})

    @classmethod
    def load(cls, reader) -> PhaseStacker:
        A = reader.tensor(SCORER_FILE, "phase_map", ("categories", "phases"))
        check_binary(reader.path / SCORER_FILE, "phase_map", A)
        return cls(A=A, coef=reader.tensor(SCORER_FILE, "phase_coef", ("phases", 3)),
                   intercept=reader.tensor(SCORER_FILE, "phase_intercept", ("phases",)))


@dataclass
class LabelCentroids:
    """Unit-length mean embedding of each category's labelled turns (the scorer's label
    features read it); saved beside the scorer."""

    FILES = (SCORER_FILE,)

    C: np.ndarray  # (categories, dim)

    def save(self, writer) -> None:
        writer.tensors(SCORER_FILE, {"centroids": self.C.astype(np.float32)})

    @classmethod
    def load(cls, reader) -> LabelCentroids:
        return cls(reader.tensor(SCORER_FILE, "centroids", ("categories", "dim")))


def check_binary(where, key: str, a: np.ndarray) -> None:
    if not np.isin(a, (0, 1)).all():
        raise ModelError(f"{where}: tensor {key!r}: expected values 0 or 1, found others")


@dataclass
class LabelMemory:
    """Embeddings and labels (categories, phases, mitigation columns) of labelled turns. Saved as
    ``memory.safetensors`` (embeddings in float16)."""

    FILES = (MEMORY_FILE,)

    E: np.ndarray  # (m, d)
    Y: np.ndarray  # (m, L) 0/1
    floor: float

    def blend(self, E: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``P`` (n, L) blended with the labels of each row's nearest labelled turns; returns the
        blended probabilities and each row's memory weight."""
        if not len(self.E) or not len(E):
            return P, np.zeros(len(E), np.float32)
        S = E @ self.E.T
        best = S.max(axis=1)
        near = S >= (best[:, None] - 1e-4)  # exact duplicates share the vote
        T = (near.astype(np.float32) @ self.Y) / near.sum(axis=1, keepdims=True)
        # 0.999: the same text, up to the float16 the memory is stored in
        a = (np.clip((best - self.floor) / (0.999 - self.floor), 0.0, 1.0) ** 2).astype(np.float32)
        return ((1 - a)[:, None] * P + a[:, None] * T).astype(np.float32), a

    def save(self, writer) -> None:
        writer.tensors(MEMORY_FILE, {"embeddings": self.E.astype(np.float16), "labels": self.Y.astype(np.uint8)})

    @classmethod
    def load(cls, reader, *, floor: float) -> LabelMemory:
        s = reader.sizes
        E = reader.tensor(MEMORY_FILE, "embeddings", ("turns", "dim"))
        Y = reader.tensor(MEMORY_FILE, "labels", ("turns", s.categories + s.phases + 1))
        check_binary(reader.path / MEMORY_FILE, "labels", Y)
        return cls(E=E.astype(np.float32), Y=Y.astype(np.float32), floor=floor)


def phase_map(catalog) -> np.ndarray:
    """0/1 matrix (categories x phases) of the phases each catalog category names."""
    pi = {p: j for j, p in enumerate(catalog.phase_ids)}
    A = np.zeros((len(catalog.category_ids), len(pi)), dtype=np.float32)
    for i, e in enumerate(catalog.categories):
        for p in e.phases:
            A[i, pi[p]] = 1
    return A

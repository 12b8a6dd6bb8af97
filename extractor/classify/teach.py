"""Answers teach at once: reviewers' labels re-score every other turn, with no retrain.

A reviewer's answer is a labelled example. It re-scores the other turns three ways:

* its neighbours (:func:`neighbour_blend`): coders code passages, so the unanswered
  interviewee turns next to an answered one (1 and 2 turns away, same interview) are blended
  with its labels; this is most of what teaching gains (BENCHMARKS.md, "Loop payoff");
* the label memory (:class:`~extractor.classify.scorer.LabelMemory`): a turn that (nearly)
  repeats an answered one takes its labels;
* the scorer's label features: each category's centroid of labelled turns moves towards the
  answered turns that carry it, and every answered turn with a category is an exemplar (the
  "most similar labelled turn" feature), so a turn like an answered one scores higher for the
  answer's categories.

An answered turn's own prediction carries the reviewer's labels (``label_source: "human"``);
its scores stay the model's (as trained, before any answer), so they still say what the model
would have coded.

:class:`TeachSession` keeps the features of a fixed set of turns (embedding is the slow part)
and re-scores them all after each answer: this is what the web reviewer calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from extractor.catalog import Catalog
from extractor.classify.features import Features
from extractor.classify.heads import Heads
from extractor.classify.scorer import LabelMemory, PairScorer, PhaseStacker, label_features
from extractor.errors import ModelError
from extractor.types import Labels, Prediction, Turn

if TYPE_CHECKING:
    from extractor.classify.model import IssueClassifier


@dataclass(frozen=True)
class Fitted:
    """The fitted parts of an :class:`IssueClassifier` that prediction reads (typed, not None)."""

    catalog: Catalog
    cat_desc: np.ndarray
    phase_desc: np.ndarray
    heads: Heads
    scorer: PairScorer
    stacker: PhaseStacker
    centroids: np.ndarray
    memory: LabelMemory
    untrained: tuple[str, ...]

    @property
    def width(self) -> int:
        """Number of label columns: categories, phases, mitigation."""
        return len(self.catalog.category_ids) + len(self.catalog.phase_ids) + 1


def fitted(model: IssueClassifier) -> Fitted:
    """``model``'s fitted parts; a :class:`ModelError` if it is not fitted."""
    m = model
    if (m.catalog_ is None or m.cat_desc_ is None or m.phase_desc_ is None or m.heads_ is None
            or m.scorer_ is None or m.stacker_ is None or m.centroids_ is None or m.memory_ is None
            or m.thresholds_ is None):
        raise ModelError("this IssueClassifier is not fitted yet: call fit() or IssueClassifier.load()")
    return Fitted(m.catalog_, m.cat_desc_, m.phase_desc_, m.heads_, m.scorer_, m.stacker_, m.centroids_, m.memory_,
                  m.untrained_)


# Weight of an answer on the unanswered turn 1 and 2 interviewee turns away
# (estimate_neighbour_weights on the corpus's 19 coded interviews): a turn shares a category with
# the coded turn before it 65% of the time and with the one two before 44% (base rate of any
# category: 26%); after an uncoded turn 11% of turns are coded, so an answer with no code lowers
# its neighbours' scores about as much.
NEIGHBOUR_WEIGHTS = (0.65, 0.44)


def estimate_neighbour_weights(turns: Sequence[Turn], max_distance: int = 2) -> tuple[float, ...]:
    """:data:`NEIGHBOUR_WEIGHTS` measured on labelled turns: per distance ``d`` (interviewee
    turns of the same interview), how often a turn shares a category with a coded turn ``d``
    before it."""
    by: dict[str, list[set[str]]] = {}
    for t in turns:
        if t.is_interviewee and t.labels is not None:
            by.setdefault(t.interview, []).append(set(t.labels.categories))
    out = []
    for d in range(1, max_distance + 1):
        pairs = [(a, b) for ts in by.values() for a, b in zip(ts, ts[d:]) if a]
        shared = sum(bool(a & b) for a, b in pairs)
        out.append(round(shared / len(pairs), 3) if pairs else 0.0)
    return tuple(out)


def label_row(catalog: Catalog, labels: Labels) -> np.ndarray:
    """``labels`` as a 0/1 row over the model's labels (categories, phases, mitigation); ids
    the model's catalog does not hold are left out (they cannot be scored)."""
    cats, phases = catalog.category_ids, catalog.phase_ids
    row = np.zeros(len(cats) + len(phases) + 1, np.float32)
    for c in labels.categories:
        if c in cats:
            row[cats.index(c)] = 1.0
    for p in labels.phases:
        if p in phases:
            row[len(cats) + phases.index(p)] = 1.0
    row[-1] = float(labels.mitigation)
    return row


@dataclass
class Taught:
    """Embeddings ``E`` (t, d) and label rows ``Y`` (t, L) of the answered turns, by ``ids``."""

    ids: list[str]
    E: np.ndarray
    Y: np.ndarray

    @classmethod
    def empty(cls, dim: int, width: int) -> Taught:
        return cls([], np.zeros((0, dim), np.float32), np.zeros((0, width), np.float32))


def taught_from_features(fit: Fitted, f: Features, ids: Sequence[str], taught: Mapping[str, Labels]) -> Taught:
    """The answered turns among the feature rows ``f`` (``ids``: each row's turn id)."""
    rows = [k for k, t in enumerate(ids) if t in taught]
    if not rows:
        return Taught.empty(f.E.shape[1], fit.width)
    Y = np.stack([label_row(fit.catalog, taught[ids[k]]) for k in rows])
    return Taught([ids[k] for k in rows], f.E[rows].astype(np.float32), Y)


@dataclass
class LabelParts:
    """What the label features and the memory blend read: the model's labelled turns plus the
    answered ones."""

    centroids: np.ndarray
    ex_E: np.ndarray
    ex_Y: np.ndarray
    memory: LabelMemory
    neutral: np.ndarray  # per category: no labelled turn at all (an entry added after training)


def label_parts(fit: Fitted, taught: Taught) -> LabelParts:
    """The model's label memory, centroids and exemplars with ``taught`` added."""
    nc = len(fit.catalog.category_ids)
    mem = fit.memory
    centroids = fit.centroids.copy()
    Tc = taught.Y[:, :nc] > 0
    for j in np.flatnonzero(Tc.any(axis=0)):
        pos = mem.Y[:, j] > 0
        # the stored centroid is a unit vector: its training sum is that direction times the
        # length of the (float16) memory's sum; taught turns add to that sum
        base = centroids[j] * float(np.linalg.norm(mem.E[pos].sum(axis=0))) if pos.any() else 0.0
        s = base + taught.E[Tc[:, j]].sum(axis=0)
        centroids[j] = s / max(float(np.linalg.norm(s)), 1e-9)
    issue = mem.Y[:, :nc].any(axis=1)
    t_issue = Tc.any(axis=1)
    return LabelParts(
        centroids=centroids.astype(np.float32),
        ex_E=np.concatenate([mem.E[issue], taught.E[t_issue]]),
        ex_Y=np.concatenate([mem.Y[issue, :nc], taught.Y[t_issue, :nc]]),
        memory=LabelMemory(np.concatenate([mem.E, taught.E]), np.concatenate([mem.Y, taught.Y]), mem.floor)
        if len(taught.ids) else mem,
        neutral=np.array([c in fit.untrained and not Tc[:, j].any()
                          for j, c in enumerate(fit.catalog.category_ids)], dtype=bool))


def entry_label_features(E: np.ndarray, parts: LabelParts) -> np.ndarray:
    """:func:`label_features` of every category; an entry without labelled turns gets neutral
    values (the turn's mean over the other entries, standardised 0) instead of a zero centroid's."""
    if not parts.neutral.any():
        return label_features(E, parts.centroids, parts.ex_E, parts.ex_Y)
    on = ~parts.neutral
    L = label_features(E, parts.centroids[on], parts.ex_E, parts.ex_Y[:, on])
    out = np.zeros((len(E), len(on), L.shape[2]), np.float32)
    out[:, on] = L
    mean = L.mean(axis=1)
    out[:, parts.neutral] = mean[:, None, :]
    out[:, parts.neutral, 1] = 0.0  # the standardised centroid cosine
    return out


def neighbour_chains(turns: Sequence[Turn], depth: int) -> dict[str, tuple[list[str], list[str]]]:
    """Per interviewee turn id: the ids of the ``depth`` interviewee turns before it and after
    it in the same interview, nearest first."""
    ids = [t.id for t in turns if t.is_interviewee]
    ivs = [t.interview for t in turns if t.is_interviewee]
    out = {}
    for k, tid in enumerate(ids):
        sides: list[list[str]] = []
        for step in (-1, 1):
            side: list[str] = []
            r = k + step
            while 0 <= r < len(ids) and len(side) < depth and ivs[r] == ivs[k]:
                side.append(ids[r])
                r += step
            sides.append(side)
        out[tid] = (sides[0], sides[1])
    return out


def neighbour_blend(P: np.ndarray, ids: Sequence[str], answered: Mapping[str, np.ndarray],
                    chains: Mapping[str, tuple[list[str], list[str]]],
                    weights: Sequence[float] = NEIGHBOUR_WEIGHTS) -> np.ndarray:
    """Blend each unanswered row's category and phase probabilities with the labels of the
    nearest answered interviewee turn on each side (same interview, ``weights[d - 1]`` at
    distance ``d``): coders code passages, so an answer speaks for the turns around it.
    ``ids``: each row's turn id; ``chains``: :func:`neighbour_chains`."""
    out = P.copy()
    width = P.shape[1] - 1  # not mitigation: a fix is said in one turn
    for k, tid in enumerate(ids):
        if tid in answered or tid not in chains:
            continue
        ws: list[float] = []
        ys: list[np.ndarray] = []
        for side in chains[tid]:
            for w, nid in zip(weights, side):
                if nid in answered:
                    ws.append(w)
                    ys.append(answered[nid])
                    break
        if ws:
            total = 1.0 - float(np.prod([1.0 - w for w in ws]))
            y = np.average(np.stack(ys), axis=0, weights=ws)
            out[k, :width] = (1.0 - total) * P[k, :width] + total * y[:width]
    return out


@dataclass
class Answers:
    """The answers' label rows by turn id, and the interviewee-turn chains they speak along."""

    rows: Mapping[str, np.ndarray]
    chains: Mapping[str, tuple[list[str], list[str]]]
    weights: Sequence[float] = NEIGHBOUR_WEIGHTS


def score(fit: Fitted, f: Features, pairs: np.ndarray, heads: np.ndarray, parts: LabelParts,
          ids: Sequence[str] = (), answers: Answers | None = None) -> np.ndarray:
    """(n, categories + phases + 1) probabilities of the rows of ``f`` (the model's own
    scoring, with the answers in the label parts); ``pairs`` and ``heads`` are the model's
    pair features and head probabilities of ``f``, which answers do not change; with
    ``answers`` (and ``ids``, each row's turn id), answers speak for their neighbours
    (:func:`neighbour_blend`)."""
    npz = len(fit.catalog.phase_ids)
    F = np.concatenate([pairs, entry_label_features(f.E, parts)], axis=2)
    pc = fit.scorer.predict_proba(F)
    pp = fit.stacker.predict_proba(pc, heads[:, :npz])
    P, _ = parts.memory.blend(f.E, np.concatenate([pc, pp, heads[:, npz + 1:]], axis=1))
    if answers is not None and answers.rows and answers.weights:
        P = neighbour_blend(P, ids, answers.rows, answers.chains, answers.weights)
    return P


def taught_scorer(model: IssueClassifier, turns: Sequence[Turn], taught: Mapping[str, Labels],
                  ) -> Callable[[Features, Sequence[str]], tuple[np.ndarray, np.ndarray]]:
    """For :meth:`IssueClassifier.predict`: a function of (features, their turn ids) -> (the
    probabilities with the answered turns of ``turns`` taught, the model's own probabilities)."""
    fit = fitted(model)
    sel = [t for t in turns if t.is_interviewee and t.id in taught]
    T = taught_from_features(fit, model.features(sel), [t.id for t in sel], taught)
    parts = label_parts(fit, T)
    own = label_parts(fit, Taught.empty(T.E.shape[1], fit.width))
    answers = Answers(dict(zip(T.ids, T.Y)), neighbour_chains(turns, len(NEIGHBOUR_WEIGHTS)))

    def probs(f: Features, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        pairs = model.pairs(f)
        heads = fit.heads.predict_proba(f.head_input(fit.cat_desc, fit.phase_desc))
        return score(fit, f, pairs, heads, parts, ids, answers), score(fit, f, pairs, heads, own)

    return probs


def as_human(pred: Prediction, labels: Labels, reviewer: str = "", reviewed_at: str = "") -> Prediction:
    """``pred`` with a reviewer's labels (``label_source: "human"``); scores stay the model's,
    evidence is kept for the categories both agree on."""
    keep = set(labels.categories)
    return replace(pred, categories=labels.categories, phases=labels.phases, mitigation=labels.mitigation,
                   evidence={c: e for c, e in pred.evidence.items() if c in keep},
                   spans={c: s for c, s in pred.spans.items() if c in keep}, label_source="human",
                   reviewer=reviewer or pred.reviewer, reviewed_at=reviewed_at or pred.reviewed_at)


class TeachSession:
    """Re-score a fixed set of turns after every answer, with no retrain.

    ``turns``: all turns of the interviews under review (both speakers, in order: neighbours
    and questions are features). Their features are computed once here; :meth:`teach` records
    an answer and :meth:`predictions` re-scores every interviewee turn with all answers so far
    (well under a second for 1,000 turns on 2 cores: BENCHMARKS.md).
    """

    def __init__(self, model: IssueClassifier, turns: Sequence[Turn], *, evidence: bool = True,
                 neighbour_weights: Sequence[float] = NEIGHBOUR_WEIGHTS):
        self.fit = fitted(model)
        self.model = model
        self.turns = list(turns)
        self.evidence = evidence
        self.neighbour_weights = tuple(neighbour_weights)
        t0 = time.perf_counter()
        self.features = model.features(self.turns)
        self.ie = [self.turns[i] for i in self.features.index]
        self.ids = [t.id for t in self.ie]
        self.known = set(self.ids)
        self.chains = neighbour_chains(self.turns, len(self.neighbour_weights))
        self.pairs = model.pairs(self.features)
        self.heads = self.fit.heads.predict_proba(self.features.head_input(self.fit.cat_desc, self.fit.phase_desc))
        self.answers: dict[str, Labels] = {}
        self.base = self.probabilities()  # the model's own scores, which answered turns keep
        self.setup_seconds = time.perf_counter() - t0

    def teach(self, turn_id: str, labels: Labels) -> None:
        """Record a reviewer's labels for one turn of the session (a later answer replaces an
        earlier one); a turn id the session does not hold is a :class:`ModelError`."""
        if turn_id not in self.known:
            raise ModelError(f"turn {turn_id}: expected an interviewee turn of this teach session, found none")
        self.answers[turn_id] = labels

    def forget(self, turn_id: str) -> None:
        """Withdraw the answer of ``turn_id`` (an ``ignore`` after an answer); no-op if none."""
        self.answers.pop(turn_id, None)

    def probabilities(self) -> np.ndarray:
        """(n, categories + phases + 1) probabilities of the session's interviewee turns."""
        taught = taught_from_features(self.fit, self.features, self.ids, self.answers)
        answers = Answers(dict(zip(taught.ids, taught.Y)), self.chains, self.neighbour_weights)
        return score(self.fit, self.features, self.pairs, self.heads, label_parts(self.fit, taught), self.ids,
                     answers)

    def predictions(self) -> list[Prediction]:
        """One prediction per interviewee turn, re-scored with every answer; answered turns
        carry their answers (``label_source: "human"``)."""
        P = self.probabilities()
        out = []
        for k, t in enumerate(self.ie):
            lab = self.answers.get(t.id)
            p = P[k] if lab is None else self.base[k]
            out.append(self.model.make_prediction(t, p, self.features, k, evidence=self.evidence, human=lab))
        return out

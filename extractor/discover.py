"""Discovery: propose new catalog entries from interviewee turns the catalog does not cover.

Pipeline (BERTopic-style, UMAP-free):

1. keep *substantive* interviewee turns (:func:`is_substantive`: enough words, not a
   greeting / thanks / procedure turn, not a short question back to the interviewer);
2. drop turns that already match the catalog confidently: the classifier predicted a
   category, or some category score reaches ``score_threshold``, or (zero-shot) the turn's
   embedding is within ``match_threshold`` cosine similarity of an entry's
   :meth:`~extractor.catalog.Entry.describe` text;
3. embed the rest, reduce with PCA, cluster (HDBSCAN or agglomerative);
4. describe each cluster: c-TF-IDF keywords, a suggested name, representative quotes,
   size, distinct interviews, nearest catalog entry, and a suggestion (``new`` entry or
   ``variant`` of the nearest one).

Proposals go through the same JSONL review loop as predictions: a reviewer sets
``"decision": "accept"`` or ``"reject"`` on a line of ``proposals.jsonl``;
:func:`apply_decisions` adds accepted ones to the catalog (:func:`accept_proposal`, new
catalog version) and appends rejected ones to an append-only memory file
(:func:`reject_proposal`) so that :func:`discover` does not propose them again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from extractor.catalog import Catalog, Entry, add_category, load_catalog
from extractor.errors import ExtractorError, InputError
from extractor.jsonl import read_predictions  # noqa: F401  (the CLI's discover reads through it)
from extractor.resources import default_rejected_path
from extractor.types import Prediction, Turn, normalize_text
from extractor.types import natural_key as _interview_key

log = logging.getLogger(__name__)

DECISIONS = ("accept", "reject")

# Words of spoken transcripts that carry no topic; added to sklearn's English stop words.
FILLER_WORDS = frozenset(
    """
    uh um umm uhm hmm mm mhm ah oh okay ok yeah yep yes yup no nope like know mean right
    really actually basically kind sort stuff thing things lot lots just maybe pretty
    think guess say said saying going gonna wanna got get gets getting want wanted
    good great sure well way ve ll don didn doesn isn aren wasn weren won wouldn couldn
    shouldn let make makes made use used using need needs does did doing done time times
    also much many something someone somebody anything everything whatever sometimes
    usually probably definitely exactly obviously honestly course able bit little
    interesting question questions mentioned talk talking talked told tell
    """.split()
)

# Greeting, thanks and interview-procedure talk: matched only on short turns, because a
# long answer may start with "thanks, good question" and still be substantive.
_PROCEDURE = re.compile(
    r"\b(thank(s| you)|nice to (meet|see)|good (morning|afternoon|evening)|hello|\bhi\b|bye|"
    r"can you (hear|see) me|hear me|my (audio|mic|microphone|camera|screen)|share (my|the) screen|"
    r"record(ing|ed)?|consent|transcri(pt|be|ption)|you'?re welcome|no problem|"
    r"(next|last|other) question|go ahead|that'?s (all|it) (for|from) me|"
    r"my name is|let me (think|see)|repeat the question|(do|can) you repeat)\b",
    re.IGNORECASE,
)


# --- config ---------------------------------------------------------------------


@dataclass(frozen=True)
class DiscoverConfig:
    """Knobs of :func:`discover`. Defaults were chosen on categories outside the benchmark's 10.

    - ``min_words``: a substantive turn has at least this many words;
      ``procedure_max_words``: greeting/thanks/procedure phrases only disqualify turns
      shorter than this; ``question_max_words``: a turn ending in "?" shorter than this is a
      question back to the interviewer.
    - ``score_threshold``: a turn whose best category score reaches it is "matched";
      ``match_threshold``: zero-shot cosine similarity to an entry's description that
      assigns the turn to that entry (``None`` = skip the zero-shot step).
    - ``question_weight``: a turn is represented by ``emb(answer) + question_weight *
      emb(question)``, renormalised (the interview guide is organised by topic, so the
      question is strong context; 0 = the answer alone). Embedding the two separately
      keeps long answers from being truncated and lets repeated questions be encoded once.
    - ``method``: ``"agglomerative"`` (Ward on PCA-reduced embeddings, cut at
      ``n_unmatched / cluster_ratio`` clusters) or ``"hdbscan"``.
    - ``theme_ratio``: (agglomerative only) the same Ward tree is also cut into
      ``n_unmatched / theme_ratio`` broad *themes*; a theme that merges several clusters is
      proposed too (``level="theme"``) and its clusters name it as ``parent``, as in
      BERTopic's topic hierarchy: a big issue voiced across many interviews shows up whole
      as a theme and split by angle as clusters. ``None`` = clusters only.
    - ``min_cluster_size``: smaller clusters are dropped; ``min_interviews``: a theme
      voiced by fewer interviews is dropped (lowered to 1, with a warning, when the input
      has one interview only).
    - ``variant_threshold``: a cluster whose centroid is at least this similar to an entry
      is suggested as a ``variant`` of it, otherwise as a ``new`` entry.
    """

    min_words: int = 15
    procedure_max_words: int = 30
    question_max_words: int = 30
    score_threshold: float = 0.5
    match_threshold: float | None = 0.6
    question_weight: float = 0.5
    method: str = "agglomerative"
    cluster_ratio: float = 12.0
    theme_ratio: float | None = 40.0
    min_cluster_size: int = 5
    min_samples: int | None = None
    min_interviews: int = 2
    pca_dim: int = 32
    variant_threshold: float = 0.5
    n_keywords: int = 8
    n_quotes: int = 5
    quote_chars: int = 400
    max_proposals: int | None = None
    reject_overlap: float = 0.5
    seed: int = 42

    def __post_init__(self) -> None:
        from extractor.config import Int, Num, OneOf, Opt, check_fields

        check_fields(self, {
            **dict.fromkeys(("min_words", "procedure_max_words", "question_max_words", "pca_dim"), Int(0)),
            **dict.fromkeys(("min_interviews", "n_keywords", "quote_chars"), Int(1)),
            "min_cluster_size": Int(2), "n_quotes": Int(1, 20),
            "min_samples": Opt(Int(1)), "max_proposals": Opt(Int(1)),
            **dict.fromkeys(("score_threshold", "variant_threshold", "reject_overlap"), Num(0, 1)),
            "match_threshold": Opt(Num(-1, 1)), "method": OneOf(("agglomerative", "hdbscan")),
            "question_weight": Num(0, 2), "cluster_ratio": Num(1), "seed": Int(None),
            "theme_ratio": Opt(Num(float(self.cluster_ratio) if isinstance(self.cluster_ratio, (int, float)) else 1,
                                   lo_open=True)),
        })


# --- records ----------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """A representative member turn of a proposal (``text`` shortened to ``quote_chars``)."""

    interview: str
    turn: int
    id: str
    text: str
    similarity: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"interview": self.interview, "turn": self.turn, "id": self.id, "text": self.text,
                "similarity": round(float(self.similarity), 4)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Quote":
        return cls(interview=str(d["interview"]), turn=int(d["turn"]), id=str(d.get("id") or ""),
                   text=str(d.get("text") or ""), similarity=float(d.get("similarity") or 0.0))


@dataclass(frozen=True)
class Proposal:
    """One candidate catalog entry: a cluster of unmatched turns.

    ``id`` is a hash of the sorted member turn ids, so the same cluster proposed again
    (e.g. after it was rejected) is recognised. ``nearest`` lists the most similar catalog
    entries as ``{"id", "name", "similarity"}``, best first; ``suggestion`` is ``"new"`` or
    ``"variant"`` (of ``nearest[0]``). ``decision`` is filled in by a reviewer.
    """

    id: str
    name: str
    keywords: tuple[str, ...]
    quotes: tuple[Quote, ...]
    size: int
    n_interviews: int
    interviews: tuple[str, ...]
    members: tuple[str, ...]
    nearest: tuple[Mapping[str, Any], ...] = ()
    suggestion: str = "new"
    phases: tuple[str, ...] = ()
    cohesion: float = 0.0
    catalog: str = ""
    decision: str | None = None
    definition: str = ""
    note: str = ""
    level: str = "cluster"  # or "theme": a union of clusters of the same Ward tree
    parent: str = ""  # id of the theme a cluster belongs to

    @property
    def nearest_entry(self) -> Mapping[str, Any] | None:
        return self.nearest[0] if self.nearest else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "suggestion": self.suggestion,
            "size": self.size,
            "n_interviews": self.n_interviews,
            "keywords": list(self.keywords),
            "nearest": [dict(n) for n in self.nearest],
            "phases": list(self.phases),
            "cohesion": round(float(self.cohesion), 4),
            "quotes": [q.to_dict() for q in self.quotes],
            "interviews": list(self.interviews),
            "members": list(self.members),
            "catalog": self.catalog,
            "decision": self.decision,
            "definition": self.definition,
            "note": self.note,
            "level": self.level,
            "parent": self.parent,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Proposal":
        return cls(
            id=str(d["id"]),
            name=str(d["name"]),
            keywords=tuple(str(k) for k in d.get("keywords") or ()),
            quotes=tuple(Quote.from_dict(q) for q in d.get("quotes") or ()),
            size=int(d.get("size") or len(d.get("members") or ())),
            n_interviews=int(d.get("n_interviews") or len(d.get("interviews") or ())),
            interviews=tuple(str(i) for i in d.get("interviews") or ()),
            members=tuple(str(m) for m in d.get("members") or ()),
            nearest=tuple(dict(n) for n in d.get("nearest") or ()),
            suggestion=str(d.get("suggestion") or "new"),
            phases=tuple(str(p) for p in d.get("phases") or ()),
            cohesion=float(d.get("cohesion") or 0.0),
            catalog=str(d.get("catalog") or ""),
            decision=d.get("decision") or None,
            definition=str(d.get("definition") or ""),
            note=str(d.get("note") or ""),
            level=str(d.get("level") or "cluster"),
            parent=str(d.get("parent") or ""),
        )


def proposal_id(member_ids: Iterable[str]) -> str:
    """Stable id of a cluster: hash of its sorted member turn ids."""
    blob = "\n".join(sorted(member_ids))
    return "p-" + hashlib.sha1(blob.encode("utf-8")).hexdigest()[:12]


@dataclass
class DiscoveryResult:
    """What :func:`run_discovery` found, with counts of every filter and a message for the
    degenerate cases (``message`` is "" when proposals could be made)."""

    proposals: list[Proposal]
    stats: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # ids of the clustered turns
    # where each turn left the pipeline: "short_or_procedure", "classifier", "zero_shot", "unmatched"
    stage: dict[str, str] = field(default_factory=dict)


# --- stage 1: substantive turns ---------------------------------------------------------


_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")


def is_substantive(text: str, config: DiscoverConfig | None = None) -> bool:
    """Whether an interviewee turn can carry an issue.

    Rule: at least ``min_words`` words; if shorter than ``procedure_max_words``, no
    greeting / thanks / recording / "can you hear me" / "next question" phrase; if shorter
    than ``question_max_words``, not ending with "?" (a question back to the interviewer).
    """
    config = config or DiscoverConfig()
    words = _WORD.findall(text)
    n = len(words)
    if n < config.min_words:
        return False
    if n < config.procedure_max_words and _PROCEDURE.search(text):
        return False
    if n < config.question_max_words and text.rstrip().endswith("?"):
        return False
    return True


# --- helpers ------------------------------------------------------------------------


def _prediction_rows(predictions: Iterable[Prediction | Mapping[str, Any]], turns: Sequence[Turn] | None):
    """Predictions joined with their turns' text, in a deterministic order."""
    by_id = {t.id: t for t in turns or () if t.id}
    rows = []
    for p in predictions:
        if not isinstance(p, Prediction):
            p = Prediction.from_dict(p)
        t = by_id.get(p.id)
        if t is not None and not t.is_interviewee:
            continue
        text = p.text or (t.text if t else "")
        question = p.question or (t.question if t else "")
        rows.append((p, normalize_text(text), normalize_text(question)))
    rows.sort(key=lambda r: (_interview_key(r[0].interview), r[0].turn, r[0].id))
    return rows


def _encode_unique(embedder, texts: Sequence[str], progress: bool = False) -> np.ndarray:
    """Encode each distinct text once (questions repeat across answers); "" -> zero vector."""
    uniq = sorted({t for t in texts if t})
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    if uniq:
        vecs = np.asarray(embedder.encode(uniq, progress=progress), dtype=np.float32)
        pos = {t: i for i, t in enumerate(uniq)}
        for i, t in enumerate(texts):
            if t:
                out[i] = vecs[pos[t]]
    return out


def embed_turns(rows, embedder, config: DiscoverConfig, progress: bool = False) -> np.ndarray:
    """L2-normalised ``emb(answer) + question_weight * emb(question)`` per row."""
    X = _encode_unique(embedder, [t for _, t, _ in rows], progress=progress)
    if config.question_weight > 0:
        X = X + config.question_weight * _encode_unique(embedder, [q for _, _, q in rows])
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms == 0, 1.0, norms)


def _stop_words() -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted(set(ENGLISH_STOP_WORDS) | FILLER_WORDS)


def ctfidf_keywords(docs: Sequence[str], labels: Sequence[int], n: int = 8, min_docs: int = 2,
                    groups: Sequence[str] | None = None) -> dict[int, list[tuple[str, float]]]:
    """Class-based TF-IDF (BERTopic): the top ``n`` terms of each cluster label >= 0.

    ``docs`` are all clustered texts, ``labels`` their cluster (-1 = background, which only
    enters the IDF). Weight of term t in class c: ``tf(t,c) / |c| * log(1 + A / f(t))`` with
    A the average class size in words and f(t) the term's frequency over all classes. A
    term must occur in at least ``min_docs`` member turns, so one long turn cannot name a
    cluster alone, and, given ``groups`` (each doc's interview), in two interviews when the
    cluster spans several, so one speaker's anecdote ("my brother") cannot either.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    labels = np.asarray(labels)
    classes = sorted(set(int(c) for c in labels))
    if not docs or not any(c >= 0 for c in classes):
        return {}
    vec = CountVectorizer(stop_words=_stop_words(), ngram_range=(1, 2), token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z\-]{2,}\b",
                          lowercase=True)
    try:
        X = vec.fit_transform(docs)
    except ValueError:  # only stop words
        return {c: [] for c in classes if c >= 0}
    vocab = np.asarray(vec.get_feature_names_out())
    binary = (X > 0).astype(np.int32)
    tf = np.vstack([np.asarray(X[labels == c].sum(axis=0)).ravel() for c in classes]).astype(float)
    df = np.vstack([np.asarray(binary[labels == c].sum(axis=0)).ravel() for c in classes])
    sizes = tf.sum(axis=1, keepdims=True)
    avg = float(sizes.mean()) or 1.0
    freq = tf.sum(axis=0)
    idf = np.log(1.0 + avg / np.maximum(freq, 1.0))
    weights = tf / np.maximum(sizes, 1.0) * idf
    out: dict[int, list[tuple[str, float]]] = {}
    for row, c in enumerate(classes):
        if c < 0:
            continue
        w = np.where(df[row] >= min(min_docs, int((labels == c).sum())), weights[row], 0.0)
        if groups is not None:
            member = np.flatnonzero(labels == c)
            ivs = sorted({groups[i] for i in member})
            if len(ivs) > 1:
                per_iv = np.vstack([np.asarray(binary[[i for i in member if groups[i] == g]].sum(axis=0)).ravel() > 0
                                    for g in ivs])
                spread = np.where(per_iv.sum(axis=0) >= 2, w, 0.0)
                if (spread > 0).any():  # else keep the per-turn rule rather than no name at all
                    w = spread
        # stable: weight desc, a bigram before a unigram of equal weight (it names more), then term
        order = sorted(np.flatnonzero(w > 0), key=lambda j: (-round(float(w[j]), 12), -vocab[j].count(" "), vocab[j]))
        picked: list[tuple[str, float]] = []
        for j in order:
            term = str(vocab[j])
            # a unigram already covered by a picked bigram adds nothing
            if " " not in term and any(term in p.split() for p, _ in picked if " " in p):
                continue
            picked.append((term, float(w[j])))
            if len(picked) == n:
                break
        out[c] = picked
    return out


def suggest_name(keywords: Sequence[str]) -> str:
    """A short human name from c-TF-IDF keywords: the best bigram (if among the top 3)
    plus the next distinct keyword, e.g. "Feature importance / shap"."""
    if not keywords:
        return "Unnamed theme"
    top = list(keywords[:3])
    bigram = next((k for k in top if " " in k), None)
    if bigram:
        rest = next((k for k in keywords if k != bigram and not set(k.split()) & set(bigram.split())), None)
        parts = [bigram] + ([rest] if rest else [])
    else:
        parts = top[:2]
    name = " / ".join(parts)
    return name[:1].upper() + name[1:]


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:48].strip("-") or "proposal"


def _cluster(X: np.ndarray, config: DiscoverConfig, ratio: float | None = None) -> np.ndarray:
    """Cluster labels (-1 = noise) for L2-normalised rows of ``X``; ``ratio`` overrides
    ``cluster_ratio`` (Ward cuts of one tree at different ratios are nested)."""
    from sklearn.decomposition import PCA

    n = X.shape[0]
    Z = X
    if config.pca_dim and min(n, X.shape[1]) > config.pca_dim:
        Z = PCA(n_components=config.pca_dim, svd_solver="full", random_state=config.seed).fit_transform(X)
    if config.method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        labels = HDBSCAN(min_cluster_size=config.min_cluster_size, min_samples=config.min_samples,
                         copy=True).fit_predict(Z)
    else:
        from sklearn.cluster import AgglomerativeClustering

        k = max(1, min(n // config.min_cluster_size, int(round(n / (ratio or config.cluster_ratio)))))
        labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(Z) if k > 1 else np.zeros(n, int)
    labels = np.asarray(labels, dtype=int)
    # renumber by first occurrence so the labels do not depend on the algorithm's numbering
    mapping: dict[int, int] = {}
    for lab in labels:
        if lab >= 0 and lab not in mapping:
            mapping[lab] = len(mapping)
    return np.array([mapping.get(lab, -1) for lab in labels], dtype=int)


# --- rejected-proposal memory -----------------------------------------------------------


def load_rejected(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Rejected proposals recorded so far (``[]`` when the memory file does not exist)."""
    from extractor.jsonl import enumerate_lines

    path = Path(path) if path else default_rejected_path()
    if not path.exists():
        return []
    out = []
    for n, obj in enumerate_lines(path):
        if not isinstance(obj.get("id"), str) or not isinstance(obj.get("members"), list):
            raise InputError(path, 'a rejected proposal with "id" and "members"', f"keys {sorted(obj)}", line=n,
                             hint="this file is written by `extractor discover-review`; do not edit it by hand")
        out.append(obj)
    return out


def is_rejected(proposal: Proposal, rejected: Sequence[Mapping[str, Any]], overlap: float = 0.5) -> bool:
    """Same id, or the member turns overlap a rejected proposal's by Jaccard >= ``overlap``
    (re-clustering with more data shifts a few members but keeps the theme)."""
    mine = set(proposal.members)
    for r in rejected:
        if r.get("id") == proposal.id:
            return True
        theirs = set(r.get("members") or ())
        if mine and theirs and len(mine & theirs) / len(mine | theirs) >= overlap:
            return True
    return False


def reject_proposal(proposal: Proposal, path: str | Path | None = None, *, reason: str = "") -> None:
    """Remember a rejected proposal: append one line to the memory file (never rewritten)."""
    import os
    from datetime import datetime, timezone

    path = Path(path) if path else default_rejected_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {"id": proposal.id, "name": proposal.name, "keywords": list(proposal.keywords),
           "members": sorted(proposal.members), "reason": reason or proposal.note,
           "catalog": proposal.catalog, "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def proposal_entry(proposal: Proposal, *, entry_id: str | None = None, name: str | None = None,
                   definition: str | None = None) -> Entry:
    """The catalog entry an accepted proposal becomes (reviewer's name/definition win)."""
    name = (name or proposal.name).strip()
    definition = (definition or proposal.definition or "").strip()
    if not definition:
        definition = "Proposed by discovery; turns about " + ", ".join(proposal.keywords[:5]) + "."
        if proposal.suggestion == "variant" and proposal.nearest_entry:
            definition += f" Variant of {proposal.nearest_entry.get('id')}."
    return Entry(id=entry_id or slugify(name), name=name, definition=definition,
                 phases=tuple(proposal.phases), keywords=tuple(proposal.keywords),
                 added_from=f"discover:{proposal.id}")


def accept_proposal(proposal: Proposal, catalog_path: str | Path | None = None, *, entry_id: str | None = None,
                    name: str | None = None, definition: str | None = None) -> Catalog:
    """Add the proposal to the catalog file as a new category (bumps the catalog version)."""
    from extractor.catalog import default_catalog_path

    path = Path(catalog_path) if catalog_path else default_catalog_path()
    catalog = load_catalog(path)
    entry = proposal_entry(proposal, entry_id=entry_id, name=name, definition=definition)
    valid_phases = set(catalog.phase_ids)
    entry = replace(entry, phases=tuple(p for p in entry.phases if p in valid_phases))
    for e in catalog.categories:
        if e.added_from == entry.added_from:
            raise InputError(path, f"proposal {proposal.id} not yet accepted", f"it is already entry {e.id!r}")
    return add_category(path, entry)


def read_proposals(path: str | Path) -> list[tuple[int, Proposal]]:
    """``(line, Proposal)`` per line of a proposals JSONL file, validating the decision field."""
    from extractor.jsonl import enumerate_lines

    out = []
    for n, obj in enumerate_lines(path):
        for key in ("id", "name"):
            if not isinstance(obj.get(key), str):
                raise InputError(path, f'a proposal with a string "{key}"', repr(obj.get(key))[:60], line=n,
                                 hint="is this a proposals file from `extractor discover`?")
        if not isinstance(obj.get("members"), list):
            raise InputError(path, 'a proposal with a "members" list', repr(obj.get("members"))[:60], line=n,
                             hint="is this a proposals file from `extractor discover`?")
        decision = obj.get("decision")
        if decision not in (None, "", *DECISIONS):
            raise InputError(path, 'decision "accept", "reject" or null', repr(decision), line=n)
        out.append((n, Proposal.from_dict(obj)))
    return out


def apply_decisions(proposals_path: str | Path, catalog_path: str | Path | None = None,
                    rejected_path: str | Path | None = None) -> dict[str, list[str]]:
    """Apply reviewers' decisions of a proposals file: accept -> catalog entry (new version),
    reject -> memory file. Undecided lines are left alone. Returns ids per outcome."""
    rows = read_proposals(proposals_path)
    rejected = load_rejected(rejected_path)
    done: dict[str, list[str]] = {"accepted": [], "rejected": [], "undecided": [], "skipped": []}
    for _, p in rows:
        if p.decision == "accept":
            try:
                cat = accept_proposal(p, catalog_path, name=p.name, definition=p.definition or None)
            except InputError as e:
                if "already entry" in e.found:
                    done["skipped"].append(p.id)
                    continue
                raise
            done["accepted"].append(cat.categories[-1].id)
        elif p.decision == "reject":
            if any(r.get("id") == p.id for r in rejected):
                done["skipped"].append(p.id)
                continue
            reject_proposal(p, rejected_path)
            rejected.append({"id": p.id, "members": list(p.members)})
            done["rejected"].append(p.id)
        else:
            done["undecided"].append(p.id)
    return done


# --- the stage ----------------------------------------------------------------------


def run_discovery(
    predictions: Iterable[Prediction | Mapping[str, Any]],
    turns: Sequence[Turn] | None,
    catalog: Catalog,
    embedder,
    config: DiscoverConfig | None = None,
    *,
    rejected: Sequence[Mapping[str, Any]] = (),
    progress: bool = False,
) -> DiscoveryResult:
    """Cluster the substantive turns that no catalog entry matches into proposals.

    ``predictions`` carry each interviewee turn's ``text`` (or ``turns`` provide it by id)
    and category ``scores``; ``rejected`` are earlier rejected proposals to leave out.
    Degenerate inputs (no unmatched turns, fewer than ``min_cluster_size``) return no
    proposals and a ``message`` saying why.
    """
    import time

    started = time.perf_counter()
    config = config or DiscoverConfig()
    rows = _prediction_rows(predictions, turns)
    stats: dict[str, Any] = {"turns": len(rows)}
    warnings: list[str] = []
    result = DiscoveryResult(proposals=[], stats=stats, warnings=warnings)
    if not rows:
        result.message = "no interviewee turns in the predictions: nothing to discover"
        return result
    interviews = sorted({p.interview for p, _, _ in rows}, key=_interview_key)
    stats["interviews"] = len(interviews)
    min_interviews = config.min_interviews
    if len(interviews) == 1 and min_interviews > 1:
        warnings.append(f"the input has one interview only ({interviews[0]}): every proposal is voiced by one "
                        "person, treat them as weak evidence")
        min_interviews = 1

    cat_ids = set(catalog.category_ids)
    substantive = [r for r in rows if is_substantive(r[1], config)]
    stats["substantive"] = len(substantive)
    result.stage = {r[0].id: "short_or_procedure" for r in rows}
    for r in substantive:
        result.stage[r[0].id] = "classifier"

    def classifier_match(p: Prediction) -> bool:
        if any(c in cat_ids for c in p.categories):
            return True
        scores = [float(v) for k, v in p.scores.items() if k in cat_ids]
        return bool(scores) and max(scores) >= config.score_threshold

    candidates = [r for r in substantive if not classifier_match(r[0])]
    stats["matched_by_classifier"] = len(substantive) - len(candidates)

    entries = list(catalog.categories)
    entry_vecs = embedder.encode([e.describe() for e in entries]) if entries else np.zeros((0, embedder.dim))
    X = embed_turns(candidates, embedder, config, progress=progress)
    if len(candidates) and config.match_threshold is not None and len(entries):
        # zero-shot on the answer alone: the question names topics the answer may not be about
        A = _encode_unique(embedder, [t for _, t, _ in candidates])
        sims = A @ entry_vecs.T
        keep = sims.max(axis=1) < config.match_threshold
        stats["matched_zero_shot"] = int((~keep).sum())
        for c, k in zip(candidates, keep):
            if not k:
                result.stage[c[0].id] = "zero_shot"
        candidates = [c for c, k in zip(candidates, keep) if k]
        X = X[keep]
    else:
        stats["matched_zero_shot"] = 0
    stats["unmatched"] = len(candidates)
    result.unmatched = [p.id for p, _, _ in candidates]
    for p, _, _ in candidates:
        result.stage[p.id] = "unmatched"

    if not candidates:
        result.message = (f"no unmatched turns: all {stats['substantive']} substantive interviewee turns match a catalog "
                          "entry (nothing to propose); lower --score-threshold or --match-threshold to look further")
        return result
    if len(candidates) < config.min_cluster_size:
        result.message = (f"only {len(candidates)} unmatched substantive turn(s), fewer than the minimum cluster size "
                          f"{config.min_cluster_size}: no cluster possible; add interviews or lower --min-cluster-size")
        return result

    labels = _cluster(X, config)
    stats["clusters"] = int(labels.max() + 1) if (labels >= 0).any() else 0
    stats["noise"] = int((labels < 0).sum())
    docs = [t for _, t, _ in candidates]
    groups = [p.interview for p, _, _ in candidates]

    def make(idx: np.ndarray, kws: tuple[str, ...], level: str) -> Proposal:
        members = [candidates[i][0] for i in idx]
        ivs = sorted({m.interview for m in members}, key=_interview_key)
        centroid = X[idx].mean(axis=0)
        centroid = centroid / (np.linalg.norm(centroid) or 1.0)
        member_sims = X[idx] @ centroid
        nearest: list[dict[str, Any]] = []
        if entries:
            esims = entry_vecs @ centroid
            for j in sorted(range(len(entries)), key=lambda j: (-esims[j], entries[j].id))[:3]:
                nearest.append({"id": entries[j].id, "name": entries[j].name, "similarity": round(float(esims[j]), 4)})
        suggestion = "variant" if nearest and nearest[0]["similarity"] >= config.variant_threshold else "new"
        phase_counts = Counter(ph for m in members for ph in m.phases)
        phases = tuple(ph for ph, k in sorted(phase_counts.items(), key=lambda kv: (-kv[1], kv[0]))
                       if k >= max(2, len(members) * 0.25))
        member_ids = tuple(sorted(m.id for m in members))
        return Proposal(
            id=proposal_id(member_ids), name=suggest_name(kws), keywords=kws,
            quotes=tuple(_pick_quotes(idx, member_sims, candidates, config)), size=len(members),
            n_interviews=len(ivs), interviews=tuple(ivs), members=member_ids, nearest=tuple(nearest),
            suggestion=suggestion, phases=phases, cohesion=round(float(member_sims.mean()), 4), catalog=catalog.tag,
            level=level)

    def keep(idx: np.ndarray) -> bool:
        if len(idx) < config.min_cluster_size:
            dropped["small"] += 1
            return False
        if len({candidates[i][0].interview for i in idx}) < min_interviews:
            dropped["few_interviews"] += 1
            return False
        return True

    proposals: list[Proposal] = []
    dropped: Counter = Counter()
    keywords = ctfidf_keywords(docs, labels, n=config.n_keywords, groups=groups)
    cluster_of: dict[int, Proposal] = {}
    for c in range(stats["clusters"]):
        idx = np.flatnonzero(labels == c)
        if keep(idx):
            cluster_of[c] = make(idx, tuple(k for k, _ in keywords.get(c, [])), "cluster")
    themes: list[Proposal] = []
    if config.theme_ratio and config.method == "agglomerative":
        coarse = _cluster(X, config, ratio=config.theme_ratio)
        theme_keywords = ctfidf_keywords(docs, coarse, n=config.n_keywords, groups=groups)
        for c in range(int(coarse.max()) + 1 if (coarse >= 0).any() else 0):
            # a theme is the union of the proposed clusters under it: never dropped material
            inside = sorted({int(f) for f in labels[coarse == c] if f in cluster_of})
            if len(inside) < 2 or len(inside) == len(cluster_of):  # it would repeat a cluster, or be everything
                continue
            idx = np.flatnonzero(np.isin(labels, inside))
            theme = make(idx, tuple(k for k, _ in theme_keywords.get(c, [])), "theme")
            themes.append(theme)
            for f in inside:
                cluster_of[f] = replace(cluster_of[f], parent=theme.id)
    stats["themes"] = len(themes)
    proposals = themes + [cluster_of[c] for c in sorted(cluster_of)]

    if rejected:
        before = len(proposals)
        proposals = [p for p in proposals if not is_rejected(p, rejected, config.reject_overlap)]
        stats["previously_rejected"] = before - len(proposals)
    accepted_from = {e.added_from for e in catalog.categories if e.added_from}
    proposals = [p for p in proposals if f"discover:{p.id}" not in accepted_from]
    present = {p.id for p in proposals}
    proposals = [p if not p.parent or p.parent in present else replace(p, parent="") for p in proposals]
    stats["dropped_small"] = dropped["small"]
    stats["dropped_few_interviews"] = dropped["few_interviews"]
    # strongest first: voiced by more people, then bigger, then tighter
    proposals.sort(key=lambda p: (-p.n_interviews, -p.size, -p.cohesion, p.id))
    if config.max_proposals:
        proposals = proposals[: config.max_proposals]
    stats["proposals"] = len(proposals)
    stats["seconds"] = round(time.perf_counter() - started, 2)
    if not proposals:
        result.message = (f"{stats['unmatched']} unmatched turns formed no cluster of at least {config.min_cluster_size} "
                          f"turns from {min_interviews}+ interviews"
                          + (f" ({stats.get('previously_rejected', 0)} matched rejected proposals)"
                             if stats.get("previously_rejected") else ""))
    result.proposals = proposals
    return result


def _pick_quotes(idx: np.ndarray, sims: np.ndarray, candidates, config: DiscoverConfig) -> list[Quote]:
    """The most central members, one per interview first (a theme is stronger when the
    quotes show several voices), then the next most central."""
    order = sorted(range(len(idx)), key=lambda k: (-sims[k], candidates[idx[k]][0].id))
    picked: list[int] = []
    seen: set[str] = set()
    for k in order:
        iv = candidates[idx[k]][0].interview
        if iv not in seen:
            picked.append(k)
            seen.add(iv)
        if len(picked) == config.n_quotes:
            break
    for k in order:
        if len(picked) >= min(config.n_quotes, len(idx)):
            break
        if k not in picked:
            picked.append(k)
    picked.sort(key=lambda k: -sims[k])
    quotes = []
    for k in picked:
        p, text, _ = candidates[idx[k]]
        if len(text) > config.quote_chars:
            text = text[: config.quote_chars].rsplit(" ", 1)[0] + " …"
        quotes.append(Quote(interview=p.interview, turn=p.turn, id=p.id, text=text, similarity=round(float(sims[k]), 4)))
    return quotes


def discover(
    predictions: Iterable[Prediction | Mapping[str, Any]],
    turns: Sequence[Turn] | None,
    catalog: Catalog,
    embedder,
    config: DiscoverConfig | None = None,
) -> list[Proposal]:
    """Proposals for new catalog entries (see :func:`run_discovery`; degenerate inputs are
    logged and give ``[]``)."""
    result = run_discovery(predictions, turns, catalog, embedder, config)
    for w in result.warnings:
        log.warning(w)
    if result.message:
        log.warning(result.message)
    return result.proposals


# --- Markdown report -----------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_report(result: DiscoveryResult, *, title: str = "Discovery proposals", source: str = "") -> str:
    """A Markdown report for a person: summary table, then keywords and quotes per proposal."""
    s = result.stats
    lines = [f"# {title}", ""]
    if source:
        lines += [f"Input: `{source}`", ""]
    lines.append(
        f"{s.get('turns', 0)} interviewee turns from {s.get('interviews', 0)} interviews; "
        f"{s.get('substantive', 0)} substantive; {s.get('matched_by_classifier', 0)} matched by the classifier, "
        f"{s.get('matched_zero_shot', 0)} by similarity to a catalog entry; {s.get('unmatched', 0)} unmatched "
        f"-> {len(result.proposals)} proposals."
    )
    lines.append("")
    for w in result.warnings:
        lines += [f"> **Warning:** {_md(w)}", ""]
    if result.message:
        lines += [f"> **No proposals:** {_md(result.message)}", ""]
    if not result.proposals:
        return "\n".join(lines) + "\n"
    number = {p.id: i for i, p in enumerate(result.proposals, 1)}

    def level(p: Proposal) -> str:
        if p.level == "theme":
            return "theme"
        return f"cluster in #{number[p.parent]}" if p.parent in number else "cluster"

    lines += ["| # | Proposed name | Level | Size | Interviews | Suggestion | Nearest entry (similarity) | Keywords |",
              "|---|---|---|---:|---:|---|---|---|"]
    for i, p in enumerate(result.proposals, 1):
        near = p.nearest_entry
        near_s = f"{near['name']} ({near['similarity']:.2f})" if near else "-"
        sugg = f"variant of {near['id']}" if p.suggestion == "variant" and near else "new entry"
        lines.append(f"| {i} | [{_md(p.name)}](#p{i}) | {level(p)} | {p.size} | {p.n_interviews} | {sugg} | "
                     f"{_md(near_s)} | {_md(', '.join(p.keywords[:5]))} |")
    lines.append("")
    for i, p in enumerate(result.proposals, 1):
        lines += [f"## <a id=\"p{i}\"></a>{i}. {_md(p.name)}", ""]
        lines.append(f"- **id**: `{p.id}`; **{level(p)}**; **size**: {p.size} turns from {p.n_interviews} "
                     f"interviews ({', '.join(p.interviews)}); cohesion {p.cohesion:.2f}")
        lines.append(f"- **keywords**: {', '.join(p.keywords) or '-'}")
        if p.nearest:
            lines.append("- **nearest entries**: " + "; ".join(f"{n['name']} (`{n['id']}`, {n['similarity']:.2f})"
                                                               for n in p.nearest))
        lines.append(f"- **suggestion**: " + (f"variant of `{p.nearest_entry['id']}`" if p.suggestion == "variant"
                                              and p.nearest_entry else "new entry"))
        if p.phases:
            lines.append(f"- **phases**: {', '.join(p.phases)}")
        lines += ["", "Quotes:", ""]
        for q in p.quotes:
            lines.append(f"> {_md(q.text)}  ")
            lines.append(f"> — {q.interview}, turn {q.turn}")
            lines.append("")
    lines.append("To accept or reject a proposal, set `\"decision\": \"accept\"` or `\"reject\"` on its line of the "
                 "proposals JSONL (optionally edit `name` and `definition`), then run `extractor discover-review FILE`.")
    return "\n".join(lines) + "\n"


def config_from_kwargs(**kwargs: Any) -> DiscoverConfig:
    """A config from keyword arguments, ignoring ``None`` values (CLI options not given)."""
    from extractor.config import from_mapping

    return from_mapping(DiscoverConfig, kwargs, skip_none=True)


# --- edges for the CLI ------------------------------------------------------------------


def _cli_embedder(name: str | None):
    """The embedder the CLI uses (tests replace it with a HashingEmbedder)."""
    from extractor.embed import make_embedder

    return make_embedder(name)

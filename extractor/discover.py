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

5. make them readable: near-duplicates merged (:func:`merge_near_duplicates`), a plain
   name from the distinctive terms people said (:func:`name_proposal`), introductions and
   small talk set aside (:func:`set_aside_kind`).

This module clusters and describes; it decides nothing. What a reviewer decides (accept
into the catalog, reject into a memory that the next run reads) is
:mod:`extractor.proposals`, which also holds the :class:`Proposal` record.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from extractor.catalog import Catalog, Entry
from extractor.errors import ExtractorError, InputError
from extractor.jsonl import read_predictions  # noqa: F401  (the one predictions reader, re-exported)
from extractor.proposals import Proposal, Quote, is_rejected, proposal_id
from extractor.types import Prediction, Turn, normalize_text
from extractor.types import natural_key as _interview_key

log = logging.getLogger(__name__)


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
    - ``duplicate_overlap``: two proposals sharing this share of their turns (Jaccard) are
      one; a cluster that is ``duplicate_overlap + 0.15`` of its theme repeats the theme.
    - ``small_talk``: proposals made of introductions ("my role is ...", or mostly turns from
      the first ``intro_position`` of their interview) or small talk are ``"mark"``-ed (kept,
      with ``kind`` set, listed last), ``"drop"``-ped, or ``"keep"``-t unmarked.
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
    duplicate_overlap: float = 0.6
    small_talk: str = "mark"
    intro_position: float = 0.12
    seed: int = 42

    def __post_init__(self) -> None:
        from extractor.config import Int, Num, OneOf, Opt, check_fields

        check_fields(self, {
            **dict.fromkeys(("min_words", "procedure_max_words", "question_max_words", "pca_dim"), Int(0)),
            **dict.fromkeys(("min_interviews", "n_keywords", "quote_chars"), Int(1)),
            "min_cluster_size": Int(2), "n_quotes": Int(1, 20),
            "min_samples": Opt(Int(1)), "max_proposals": Opt(Int(1)),
            **dict.fromkeys(("score_threshold", "variant_threshold", "reject_overlap", "duplicate_overlap",
                             "intro_position"), Num(0, 1)),
            "match_threshold": Opt(Num(-1, 1)), "small_talk": OneOf(("mark", "drop", "keep")),
            "method": OneOf(("agglomerative", "hdbscan")),
            "question_weight": Num(0, 2), "cluster_ratio": Num(1), "seed": Int(None),
            "theme_ratio": Opt(Num(float(self.cluster_ratio) if isinstance(self.cluster_ratio, (int, float)) else 1,
                                   lo_open=True)),
        })


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


# --- naming -------------------------------------------------------------------------

# Words every interview of this study uses: fine inside a two-word term ("data quality"),
# but alone they name nothing.
GENERIC_WORDS = frozenset(
    """
    data model models system systems machine learning ml ai example examples company companies client clients
    customer customers work working worked project projects problem problems issue issues case cases people team
    teams business process processes quality thing part level information use fact way end research solution
    solutions different differently main hard easy important available needed need needs build building built
    compare compared collected encounter encountered dealt interested sorry answer answers day days month months
    year years week weeks figure mix challenge challenges moment point start started depends depend
    """.split()
)


def _informative(term: str) -> bool:
    words = term.split()
    return bool(words) and not all(w in GENERIC_WORDS for w in words)


def name_proposal(keywords: Sequence[str], quotes: Sequence[str] = ()) -> str:
    """A plain name from a proposal's distinctive terms (c-TF-IDF order) and its quotes.

    Terms made only of study-wide or everyday words ("data", "client", "needed") are
    skipped; among the top eight remaining, terms heard in at least two quotes come first
    (what several people said, not one speaker's turn of phrase), two-word terms before
    single words. Two terms name it, e.g. "Weather forecasts and holidays".
    """
    terms = [k for k in dict.fromkeys(keywords) if _informative(k)][:8]
    if not terms:
        return "Unnamed group" if not keywords else (keywords[0][:1].upper() + keywords[0][1:])
    low = [q.lower() for q in quotes]
    # "proof concept" is heard as "proof of concept": a stop word may sit between the words
    pattern = {t: re.compile(r"\b" + r"\W+(?:\w+\W+)?".join(map(re.escape, t.split()))) for t in terms}
    heard = {t: sum(bool(pattern[t].search(q)) for q in low) for t in terms}
    ranked = sorted(range(len(terms)), key=lambda i: (heard[terms[i]] < 2, " " not in terms[i], i))
    first = terms[ranked[0]]
    second = next((terms[i] for i in ranked[1:] if not set(terms[i].split()) & set(first.split())), None)
    name = first + (f" and {second}" if second else "")
    return name[:1].upper() + name[1:]


# --- small talk and introductions -------------------------------------------------------

_INTRODUCTION = re.compile(
    r"\b(my (current )?(role|position|job|title|background|name|team)|i'?m (a|an|the|working|currently)\b|"
    r"i am (a|an|the|working|currently)\b|i work(ed)? (as|at|for|in|on)|years? (of experience|ago)|"
    r"currently (working|employed|at)|phd|master'?s|bachelor|degree|studied|i joined|responsible for|"
    r"in charge of|my company|our company|i have a background)",
    re.IGNORECASE,
)


def set_aside_kind(texts: Sequence[str], positions: Sequence[float], config: "DiscoverConfig") -> str:
    """``"introductions"``, ``"small talk"`` or ``""`` for a group of member turns.

    Introductions: most members come from the opening of their interview (the first
    ``intro_position`` of its turns) or say who the speaker is ("my role", "I work as",
    "years of experience"). Small talk: most members are greetings, thanks or talk about
    the interview itself (recording, questions, audio).
    """
    n = max(len(texts), 1)
    early = sum(p <= config.intro_position for p in positions) / n
    intro = sum(bool(_INTRODUCTION.search(t)) for t in texts) / n
    if early >= 0.6 or intro >= 0.6 or (early >= 0.4 and intro >= 0.4):
        return "introductions"
    if sum(bool(_PROCEDURE.search(t)) for t in texts) / n >= 0.5:
        return "small talk"
    return ""


# --- the stage ----------------------------------------------------------------------


@dataclass
class _Pool:
    """The unmatched turns being clustered, with what describing a cluster needs."""

    rows: list  # (Prediction, text, question)
    X: np.ndarray  # their embeddings, L2-normalised
    positions: list[float]  # each turn's place in its interview, 0 = first turn, 1 = last
    entries: list[Entry]
    entry_vecs: np.ndarray
    catalog: Catalog

    @property
    def docs(self) -> list[str]:
        return [t for _, t, _ in self.rows]

    @property
    def groups(self) -> list[str]:
        return [p.interview for p, _, _ in self.rows]


def _positions(rows, turns: Sequence[Turn] | None) -> list[float]:
    last: dict[str, int] = {}
    for t in turns or ():
        last[t.interview] = max(last.get(t.interview, 0), t.turn)
    for p, _, _ in rows:
        last[p.interview] = max(last.get(p.interview, 0), p.turn)
    return [p.turn / max(last[p.interview], 1) for p, _, _ in rows]


def _start(predictions, turns, config: DiscoverConfig, result: DiscoveryResult):
    """Rows in a stable order, and the effective ``min_interviews`` (1 for one interview)."""
    rows = _prediction_rows(predictions, turns)
    result.stats["turns"] = len(rows)
    if not rows:
        result.message = "no interviewee turns in the predictions: nothing to discover"
        return rows, config.min_interviews
    interviews = sorted({p.interview for p, _, _ in rows}, key=_interview_key)
    result.stats["interviews"] = len(interviews)
    if len(interviews) == 1 and config.min_interviews > 1:
        result.warnings.append(f"the input has one interview only ({interviews[0]}): every proposal is voiced by "
                               "one person, treat them as weak evidence")
        return rows, 1
    return rows, config.min_interviews


def _classifier_match(p: Prediction, cat_ids: set[str], config: DiscoverConfig) -> bool:
    if any(c in cat_ids for c in p.categories):
        return True
    scores = [float(v) for k, v in p.scores.items() if k in cat_ids]
    return bool(scores) and max(scores) >= config.score_threshold


def select_unmatched(rows, turns, catalog: Catalog, embedder, config: DiscoverConfig, result: DiscoveryResult,
                     progress: bool = False) -> _Pool:
    """Substantive turns that neither the classifier nor (zero-shot) a catalog description
    matches, embedded; ``result.stage`` records where every turn left."""
    stats = result.stats
    cat_ids = set(catalog.category_ids)
    substantive = [r for r in rows if is_substantive(r[1], config)]
    stats["substantive"] = len(substantive)
    result.stage = {r[0].id: "short_or_procedure" for r in rows}
    for r in substantive:
        result.stage[r[0].id] = "classifier"
    candidates = [r for r in substantive if not _classifier_match(r[0], cat_ids, config)]
    stats["matched_by_classifier"] = len(substantive) - len(candidates)

    entries = list(catalog.categories)
    entry_vecs = embedder.encode([e.describe() for e in entries]) if entries else np.zeros((0, embedder.dim))
    X = embed_turns(candidates, embedder, config, progress=progress)
    stats["matched_zero_shot"] = 0
    if len(candidates) and config.match_threshold is not None and len(entries):
        # zero-shot on the answer alone: the question names topics the answer may not be about
        sims = _encode_unique(embedder, [t for _, t, _ in candidates]) @ entry_vecs.T
        keep = sims.max(axis=1) < config.match_threshold
        stats["matched_zero_shot"] = int((~keep).sum())
        for c, k in zip(candidates, keep):
            if not k:
                result.stage[c[0].id] = "zero_shot"
        candidates = [c for c, k in zip(candidates, keep) if k]
        X = X[keep]
    stats["unmatched"] = len(candidates)
    result.unmatched = [p.id for p, _, _ in candidates]
    for p, _, _ in candidates:
        result.stage[p.id] = "unmatched"
    all_pos = dict(zip([r[0].id for r in rows], _positions(rows, turns)))
    return _Pool(candidates, X, [all_pos[p.id] for p, _, _ in candidates], entries, entry_vecs, catalog)


def _shown_keywords(keywords: Sequence[str], name_terms: Sequence[str], n: int) -> tuple[str, ...]:
    """What a person reads as the group's distinctive words: informative terms first (those
    heard across interviews, then the other distinctive ones the name may use), study-wide
    words last, ``n`` in all."""
    terms = list(dict.fromkeys([*keywords, *name_terms]))
    informative = [k for k in terms if _informative(k)]
    return tuple((informative + [k for k in keywords if not _informative(k)])[:n])


def describe_group(pool: _Pool, idx: np.ndarray, keywords: Sequence[str], level: str,
                   config: DiscoverConfig, name_terms: Sequence[str] = ()) -> Proposal:
    """A proposal for the pool's turns ``idx``: name, quotes, nearest entries, phases, kind.

    ``keywords`` are the group's c-TF-IDF terms heard across interviews; ``name_terms``
    more of its distinctive terms (no spread rule) the name may also draw on."""
    members = [pool.rows[i][0] for i in idx]
    ivs = sorted({m.interview for m in members}, key=_interview_key)
    centroid = pool.X[idx].mean(axis=0)
    centroid = centroid / (np.linalg.norm(centroid) or 1.0)
    member_sims = pool.X[idx] @ centroid
    nearest: list[dict[str, Any]] = []
    if pool.entries:
        esims = pool.entry_vecs @ centroid
        for j in sorted(range(len(pool.entries)), key=lambda j: (-esims[j], pool.entries[j].id))[:3]:
            e = pool.entries[j]
            nearest.append({"id": e.id, "name": e.name, "similarity": round(float(esims[j]), 4)})
    suggestion = "variant" if nearest and nearest[0]["similarity"] >= config.variant_threshold else "new"
    phase_counts = Counter(ph for m in members for ph in m.phases)
    phases = tuple(ph for ph, k in sorted(phase_counts.items(), key=lambda kv: (-kv[1], kv[0]))
                   if k >= max(2, len(members) * 0.25))
    quotes = tuple(_pick_quotes(idx, member_sims, pool.rows, config))
    member_ids = tuple(sorted(m.id for m in members))
    kind = set_aside_kind([pool.rows[i][1] for i in idx], [pool.positions[i] for i in idx], config)
    return Proposal(
        id=proposal_id(member_ids), name=name_proposal([*keywords, *name_terms], [q.text for q in quotes]),
        keywords=_shown_keywords(keywords, name_terms, config.n_keywords), quotes=quotes, size=len(members), n_interviews=len(ivs), interviews=tuple(ivs),
        members=member_ids, nearest=tuple(nearest), suggestion=suggestion, phases=phases,
        cohesion=round(float(member_sims.mean()), 4), catalog=pool.catalog.tag, level=level, kind=kind)


def cluster_proposals(pool: _Pool, config: DiscoverConfig, min_interviews: int,
                      result: DiscoveryResult) -> list[Proposal]:
    """Cluster the pool; one proposal per kept cluster, plus broad themes that group several."""
    stats = result.stats
    labels = _cluster(pool.X, config)
    stats["clusters"] = int(labels.max() + 1) if (labels >= 0).any() else 0
    stats["noise"] = int((labels < 0).sum())
    stats["dropped_small"] = stats["dropped_few_interviews"] = 0

    def keep(idx: np.ndarray) -> bool:
        if len(idx) < config.min_cluster_size:
            stats["dropped_small"] += 1
            return False
        if len({pool.rows[i][0].interview for i in idx}) < min_interviews:
            stats["dropped_few_interviews"] += 1
            return False
        return True

    keywords = ctfidf_keywords(pool.docs, labels, n=config.n_keywords, groups=pool.groups)
    name_terms = ctfidf_keywords(pool.docs, labels, n=20)
    cluster_of: dict[int, Proposal] = {}
    for c in range(stats["clusters"]):
        idx = np.flatnonzero(labels == c)
        if keep(idx):
            cluster_of[c] = describe_group(pool, idx, [k for k, _ in keywords.get(c, [])], "cluster", config,
                                           [k for k, _ in name_terms.get(c, [])])
    themes = _themes(pool, labels, cluster_of, config)
    stats["themes"] = len(themes)
    return themes + [cluster_of[c] for c in sorted(cluster_of)]


def _themes(pool: _Pool, labels: np.ndarray, cluster_of: dict[int, Proposal], config: DiscoverConfig) -> list[Proposal]:
    """Broad themes: a coarser cut of the same Ward tree; each clusters' ``parent`` is set."""
    if not config.theme_ratio or config.method != "agglomerative":
        return []
    coarse = _cluster(pool.X, config, ratio=config.theme_ratio)
    theme_keywords = ctfidf_keywords(pool.docs, coarse, n=config.n_keywords, groups=pool.groups)
    theme_terms = ctfidf_keywords(pool.docs, coarse, n=20)
    themes = []
    for c in range(int(coarse.max()) + 1 if (coarse >= 0).any() else 0):
        # a theme is the union of the proposed clusters under it: never dropped material
        inside = sorted({int(f) for f in labels[coarse == c] if f in cluster_of})
        if len(inside) < 2 or len(inside) == len(cluster_of):  # it would repeat a cluster, or be everything
            continue
        idx = np.flatnonzero(np.isin(labels, inside))
        theme = describe_group(pool, idx, [k for k, _ in theme_keywords.get(c, [])], "theme", config,
                               [k for k, _ in theme_terms.get(c, [])])
        themes.append(theme)
        for f in inside:
            cluster_of[f] = replace(cluster_of[f], parent=theme.id)
    return themes


def merge_near_duplicates(proposals: Sequence[Proposal], config: DiscoverConfig) -> tuple[list[Proposal], int]:
    """Drop proposals that repeat another: member overlap (Jaccard) >= ``duplicate_overlap``,
    or a cluster making up most (``duplicate_overlap`` + 0.15) of its theme. The larger one
    stays, and clusters under a dropped theme move to the one kept. Names left equal are told
    apart by their next distinctive term. Returns the proposals kept and the number merged."""
    kept: list[Proposal] = []
    moved: dict[str, str] = {}
    for p in sorted(proposals, key=lambda p: (-p.size, p.level != "theme", p.id)):
        mine = set(p.members)
        dup = None
        for k in kept:
            theirs = set(k.members)
            inter = len(mine & theirs)
            if inter / len(mine | theirs) >= config.duplicate_overlap or (
                    p.parent == k.id and inter / len(theirs) >= min(1.0, config.duplicate_overlap + 0.15)):
                dup = k
                break
        if dup is None:
            kept.append(p)
        else:
            moved[p.id] = dup.id
    out = []
    for p in kept:
        parent = moved.get(p.parent, p.parent)
        out.append(replace(p, parent="" if parent == p.id else parent))
    seen: Counter = Counter(p.name for p in out)
    for i, p in enumerate(out):
        if seen[p.name] > 1:
            extra = next((k for k in p.keywords if _informative(k) and k.lower() not in p.name.lower()), "")
            if extra:
                out[i] = replace(p, name=f"{p.name} ({extra})")
    return out, len(proposals) - len(kept)


def _leave_out_known(proposals: list[Proposal], catalog: Catalog, rejected: Sequence[Mapping[str, Any]],
                     config: DiscoverConfig, result: DiscoveryResult) -> list[Proposal]:
    """Drop what a reviewer already rejected or accepted into the catalog."""
    if rejected:
        before = len(proposals)
        proposals = [p for p in proposals if not is_rejected(p, rejected, config.reject_overlap)]
        result.stats["previously_rejected"] = before - len(proposals)
    accepted_from = {e.added_from for e in catalog.categories if e.added_from}
    proposals = [p for p in proposals if f"discover:{p.id}" not in accepted_from]
    present = {p.id for p in proposals}
    return [p if not p.parent or p.parent in present else replace(p, parent="") for p in proposals]


def _set_aside(proposals: list[Proposal], config: DiscoverConfig, result: DiscoveryResult) -> list[Proposal]:
    """Introductions and small talk: dropped (``small_talk="drop"``) or kept, marked, last."""
    marked = [p for p in proposals if p.kind]
    result.stats["small_talk"] = len(marked)
    if config.small_talk == "drop":
        gone = {p.id for p in marked}
        return [p if p.parent not in gone else replace(p, parent="") for p in proposals if not p.kind]
    if config.small_talk == "keep":
        return [replace(p, kind="") for p in proposals]
    return proposals


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
    and category ``scores``; ``rejected`` are earlier rejected proposals to leave out
    (:func:`extractor.proposals.load_rejected`). Degenerate inputs (no unmatched turns,
    fewer than ``min_cluster_size``) return no proposals and a ``message`` saying why.
    """
    import time

    started = time.perf_counter()
    config = config or DiscoverConfig()
    result = DiscoveryResult(proposals=[])
    rows, min_interviews = _start(predictions, turns, config, result)
    if not rows:
        return result
    pool = select_unmatched(rows, turns, catalog, embedder, config, result, progress=progress)
    n = len(pool.rows)
    if not n:
        result.message = (f"no unmatched turns: all {result.stats['substantive']} substantive interviewee turns match a "
                          "catalog entry (nothing to propose); lower --score-threshold or --match-threshold to look "
                          "further")
        return result
    if n < config.min_cluster_size:
        result.message = (f"only {n} unmatched substantive turn(s), fewer than the minimum cluster size "
                          f"{config.min_cluster_size}: no cluster possible; add interviews or lower --min-cluster-size")
        return result
    proposals = cluster_proposals(pool, config, min_interviews, result)
    proposals, result.stats["merged_duplicates"] = merge_near_duplicates(proposals, config)
    proposals = _leave_out_known(proposals, catalog, rejected, config, result)
    proposals = _set_aside(proposals, config, result)
    # strongest first: voiced by more people, then bigger, then tighter; set-aside ones last
    proposals.sort(key=lambda p: (bool(p.kind), -p.n_interviews, -p.size, -p.cohesion, p.id))
    if config.max_proposals:
        proposals = proposals[: config.max_proposals]
    result.stats["proposals"] = len(proposals)
    result.stats["seconds"] = round(time.perf_counter() - started, 2)
    if not proposals:
        prev = result.stats.get("previously_rejected")
        result.message = (f"{n} unmatched turns formed no cluster of at least {config.min_cluster_size} "
                          f"turns from {min_interviews}+ interviews"
                          + (f" ({prev} matched rejected proposals)" if prev else ""))
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
    *,
    rejected: Sequence[Mapping[str, Any]] = (),
) -> list[Proposal]:
    """Proposals for new catalog entries (see :func:`run_discovery`; degenerate inputs are
    logged and give ``[]``); ``rejected``: earlier rejected proposals to leave out."""
    result = run_discovery(predictions, turns, catalog, embedder, config, rejected=rejected)
    for w in result.warnings:
        log.warning(w)
    if result.message:
        log.warning(result.message)
    return result.proposals


# --- Markdown report -----------------------------------------------------------------


def render_report(result: DiscoveryResult, *, title: str = "Possible new codes", source: str = "") -> str:
    """A Markdown report in plain words: what was looked at, then each proposal with its
    distinctive words, where it was heard, how it relates to the catalog, and quotes."""
    from extractor.report import md_escape, plural, proposal_view

    s = result.stats
    lines = [f"# {md_escape(title)}", ""]
    if source:
        lines += [f"Input: {md_escape(source)}", ""]
    lines.append(
        f"Of {plural(s.get('turns', 0), 'interviewee turn')} from {plural(s.get('interviews', 0), 'interview')}, "
        f"{s.get('substantive', 0)} say something substantial; {s.get('matched_by_classifier', 0)} of those already "
        f"fit a code and {s.get('matched_zero_shot', 0)} resemble a code's description. The other "
        f"{s.get('unmatched', 0)} were grouped by what they say into {plural(len(result.proposals), 'proposal')}.")
    lines.append("")
    for w in result.warnings:
        lines += [f"> **Warning:** {md_escape(w)}", ""]
    if result.message:
        lines += [f"> **No proposals:** {md_escape(result.message)}", ""]
    if not result.proposals:
        return "\n".join(lines) + "\n"
    titles = {p.id: p.name for p in result.proposals}
    lines += ["| # | Possible new code | Heard in | Closest existing code | Distinctive words |",
              "|---|---|---|---|---|"]
    for i, p in enumerate(result.proposals, 1):
        v = proposal_view(p.to_dict(), titles)
        near = p.nearest_entry
        note = " (set aside: " + p.kind + ")" if p.kind else (" (broad theme)" if v["theme"] else "")
        lines.append(f"| {i} | {md_escape(p.name)}{note} | {plural(p.size, 'turn')}, "
                     f"{plural(p.n_interviews, 'interview')} | {md_escape(near['name']) if near else '-'} | "
                     f"{md_escape(', '.join(v['words'][:5]))} |")
    lines.append("")
    shown: set[str] = set()
    for i, p in enumerate(result.proposals, 1):
        v = proposal_view(p.to_dict(), titles)
        lines += [f"## {i}. {md_escape(p.name)}", ""]
        if p.kind:
            lines += [f"*Set aside as {md_escape(p.kind)}: probably not a quality issue.*", ""]
        if v["theme"]:
            lines += ["*A broad theme that groups several of the proposals below.*", ""]
        if v["parent"]:
            lines += [f"*Part of the broad theme \u201c{md_escape(v['parent'])}\u201d.*", ""]
        lines.append(f"{md_escape(v['said'])} Interviews: {md_escape(', '.join(p.interviews))}.")
        if v["words"]:
            lines.append(f"Distinctive words: {md_escape(', '.join(v['words']))}.")
        if v["relation"]:
            lines.append(md_escape(v["relation"]))
        lines += ["", "Quotes:", ""]
        fresh = [q for q in p.quotes if q.id not in shown] or list(p.quotes[:1])  # once each, under the theme
        shown.update(q.id for q in fresh)
        for q in fresh:
            lines += [f"> {md_escape(q.text)}", ">", f"> — {md_escape(q.interview)}, turn {q.turn}", ""]
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

"""The discovery stage: passages -> zero-shot check -> groups -> named proposals."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from extractor.catalog import Catalog
from extractor.discover.config import DiscoverConfig, DiscoveryResult
from extractor.discover.describe import Pool, describe_group
from extractor.discover.grouping import cluster, ctfidf_keywords, embed_texts, encode_unique, normalize_rows
from extractor.discover.naming import GENERIC_WORDS, NOT_A_HEAD, Group, choose_names
from extractor.discover.passages import Passage, prediction_rows, select_passages
from extractor.proposals import Proposal, is_rejected
from extractor.types import Prediction, Turn, natural_key

log = logging.getLogger(__name__)


def informative(term: str) -> bool:
    """Not only study-wide words ("data", "model"), verbs of speech or adverbs ("try", "specifically")."""
    words = term.split()
    return bool(words) and not all(w in GENERIC_WORDS or w in NOT_A_HEAD or w.endswith("ly") for w in words)


def score_profiles(passages: Sequence[Passage], catalog: Catalog) -> np.ndarray:
    """Each passage's classifier scores over the catalog's categories and phases, L2-normalised
    (zeros where a prediction has none)."""
    keys = [*catalog.category_ids, *catalog.phase_ids]
    S = np.array([[float(p.prediction.scores.get(k, 0.0)) for k in keys] for p in passages], dtype=np.float32)
    return normalize_rows(S.reshape(len(passages), len(keys)))


def build_pool(passages: list[Passage], catalog: Catalog, embedder: Any, config: DiscoverConfig,
               result: DiscoveryResult, progress: bool = False) -> Pool:
    """Embed the passages and drop those within ``match_threshold`` of an entry's description."""
    entries = list(catalog.categories)
    entry_vecs = (normalize_rows(np.asarray(embedder.encode([e.describe() for e in entries]), dtype=np.float32))
                  if entries else np.zeros((0, embedder.dim), dtype=np.float32))
    A = normalize_rows(encode_unique(embedder, [p.text for p in passages], progress=progress))
    result.stats["matched_zero_shot"] = 0
    if len(passages) and config.match_threshold is not None and len(entries):
        keep = (A @ entry_vecs.T).max(axis=1) < config.match_threshold
        result.stats["matched_zero_shot"] = int((~keep).sum())
        for p, k in zip(passages, keep):
            if not k:
                result.stage[p.id] = "zero_shot"
        passages, A = [p for p, k in zip(passages, keep) if k], A[keep]
    X = A
    if config.question_weight > 0:
        X = embed_texts(embedder, [p.text for p in passages], [p.question for p in passages], config)
    if config.score_weight > 0:
        X = normalize_rows(np.hstack([X, config.score_weight * score_profiles(passages, catalog)]))
    result.stats["unmatched"] = len(passages)
    result.unmatched = [p.id for p in passages]
    return Pool(passages, X, A, entries, entry_vecs, catalog)


def kept_groups(pool: Pool, labels: np.ndarray, config: DiscoverConfig, min_interviews: int,
                stats: dict[str, Any]) -> list[np.ndarray]:
    """Member indices of the clusters large enough, voiced in enough interviews and, on
    average, about a problem (``group_relevance``)."""
    out = []
    stats["dropped_small"] = stats["dropped_few_interviews"] = stats["dropped_not_problem"] = 0
    for c in range(int(labels.max()) + 1 if (labels >= 0).any() else 0):
        idx = np.flatnonzero(labels == c)
        rel = [r for r in (pool.passages[i].relevance for i in idx) if r is not None]
        if len(idx) < config.min_cluster_size:
            stats["dropped_small"] += 1
        elif len({pool.passages[i].interview for i in idx}) < min_interviews:
            stats["dropped_few_interviews"] += 1
        elif config.group_relevance is not None and rel and float(np.mean(rel)) < config.group_relevance:
            stats["dropped_not_problem"] += 1
        else:
            out.append(idx)
    return out


def propose(pool: Pool, groups: Sequence[np.ndarray], labels: np.ndarray, level: str, embedder: Any,
            config: DiscoverConfig) -> list[Proposal]:
    """Name the groups together (names differ from each other) and describe each."""
    keywords = ctfidf_keywords(pool.docs, labels, n=20)
    label_of = [int(labels[idx[0]]) for idx in groups]
    named = [Group(tuple(pool.passages[i].text for i in idx), tuple(pool.passages[i].interview for i in idx),
                   pool.centroid(idx)) for idx in groups]
    names = choose_names(named, pool.docs, embedder, config.name_diversity)
    out = []
    for idx, lab, name in zip(groups, label_of, names):
        terms = [k for k, _ in keywords.get(lab, [])]
        shown = [k for k in terms if informative(k)] + [k for k in terms if not informative(k)]
        out.append(describe_group(pool, idx, shown, name, level, config))
    return out


def themes(pool: Pool, labels: np.ndarray, clusters: list[Proposal], groups: list[np.ndarray], embedder: Any,
           config: DiscoverConfig) -> tuple[list[Proposal], list[Proposal]]:
    """Broad themes (a coarser cut of the same Ward tree) uniting >= 2 proposed clusters;
    returns the themes and the clusters with ``parent`` set."""
    if not config.theme_ratio or config.method != "agglomerative" or not clusters:
        return [], clusters
    coarse = cluster(pool.X, config, ratio=config.theme_ratio)
    cluster_label = [int(labels[idx[0]]) for idx in groups]
    theme_groups, inside_of = [], []
    for c in range(int(coarse.max()) + 1 if (coarse >= 0).any() else 0):
        inside = [k for k, lab in enumerate(cluster_label) if (coarse[labels == lab] == c).all()]
        if 2 <= len(inside) < len(clusters):
            theme_groups.append(np.sort(np.concatenate([groups[k] for k in inside])))
            inside_of.append(inside)
    theme_labels = np.full(len(pool.passages), -1)
    for t, idx in enumerate(theme_groups):
        theme_labels[idx] = t
    found = propose(pool, theme_groups, theme_labels, "theme", embedder, config) if theme_groups else []
    clusters = list(clusters)
    for theme, inside in zip(found, inside_of):
        for k in inside:
            clusters[k] = replace(clusters[k], parent=theme.id)
    return found, clusters


def merge_near_duplicates(proposals: Sequence[Proposal], config: DiscoverConfig) -> tuple[list[Proposal], int]:
    """Drop proposals that repeat another (member Jaccard >= ``duplicate_overlap``, or a
    cluster making up most of its theme); the larger stays. Names left equal are told apart
    by their next distinctive term. Returns the proposals kept and the number merged."""
    kept: list[Proposal] = []
    moved: dict[str, str] = {}
    for p in sorted(proposals, key=lambda p: (-p.size, p.level != "theme", p.id)):
        mine = set(p.members)
        dup = next((k for k in kept if len(mine & set(k.members)) / len(mine | set(k.members))
                    >= config.duplicate_overlap or (p.parent == k.id and len(mine & set(k.members)) / len(k.members)
                                                    >= min(1.0, config.duplicate_overlap + 0.15))), None)
        if dup is None:
            kept.append(p)
        else:
            moved[p.id] = dup.id
    out = []
    for p in kept:
        parent = moved.get(p.parent, p.parent)
        out.append(replace(p, parent="" if parent == p.id else parent))
    seen = Counter(p.name for p in out)
    for i, p in enumerate(out):
        if seen[p.name] > 1:
            extra = next((k for k in p.keywords if informative(k) and k.lower() not in p.name.lower()), "")
            if extra:
                out[i] = replace(p, name=f"{p.name} ({extra})")
    return out, len(proposals) - len(kept)


def leave_out_known(proposals: list[Proposal], catalog: Catalog, rejected: Sequence[Mapping[str, Any]],
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


def set_aside(proposals: list[Proposal], config: DiscoverConfig, result: DiscoveryResult) -> list[Proposal]:
    """Introductions and small talk: dropped (``small_talk="drop"``) or kept, marked, last."""
    marked = [p for p in proposals if p.kind]
    result.stats["small_talk"] = len(marked)
    if config.small_talk == "drop":
        gone = {p.id for p in marked}
        return [p if p.parent not in gone else replace(p, parent="") for p in proposals if not p.kind]
    if config.small_talk == "keep":
        return [replace(p, kind="") for p in proposals]
    return proposals


def start(predictions: Iterable[Prediction | Mapping[str, Any]], turns: Sequence[Turn] | None,
          config: DiscoverConfig, result: DiscoveryResult) -> tuple[list, int]:
    """Rows in a stable order, and the effective ``min_interviews`` (1 for one interview)."""
    rows = prediction_rows(predictions, turns)
    result.stats["turns"] = len(rows)
    if not rows:
        result.message = "no interviewee turns in the predictions: nothing to discover"
        return rows, config.min_interviews
    interviews = sorted({p.interview for p, _, _ in rows}, key=natural_key)
    result.stats["interviews"] = len(interviews)
    if len(interviews) == 1 and config.min_interviews > 1:
        result.warnings.append(f"the input has one interview only ({interviews[0]}): every proposal is voiced by "
                               "one person, treat them as weak evidence")
        return rows, 1
    return rows, config.min_interviews


def pool_message(n: int, result: DiscoveryResult, config: DiscoverConfig) -> str:
    """Why a pool this small yields nothing ("" when it can be clustered)."""
    if not n:
        return (f"no unmatched turns: of {result.stats['substantive']} substantive interviewee turns none describes "
                "a problem that no catalog entry matches (nothing to propose); lower --relevance-threshold, "
                "--score-threshold or --match-threshold to look further")
    if n < config.min_cluster_size:
        return (f"only {n} unmatched substantive turn(s), fewer than the minimum cluster size "
                f"{config.min_cluster_size}: no cluster possible; add interviews or lower --min-cluster-size")
    return ""


def group_and_name(pool: Pool, embedder: Any, config: DiscoverConfig, min_interviews: int,
                   result: DiscoveryResult) -> list[Proposal]:
    labels = cluster(pool.X, config)
    result.stats["clusters"] = int(labels.max() + 1) if (labels >= 0).any() else 0
    result.stats["noise"] = int((labels < 0).sum())
    groups = kept_groups(pool, labels, config, min_interviews, result.stats)
    clusters = propose(pool, groups, labels, "cluster", embedder, config) if groups else []
    found, clusters = themes(pool, labels, clusters, groups, embedder, config)
    result.stats["themes"] = len(found)
    return found + clusters


def run_discovery(
    predictions: Iterable[Prediction | Mapping[str, Any]],
    turns: Sequence[Turn] | None,
    catalog: Catalog,
    embedder: Any,
    config: DiscoverConfig | None = None,
    *,
    rejected: Sequence[Mapping[str, Any]] = (),
    progress: bool = False,
) -> DiscoveryResult:
    """Cluster the problem passages that no catalog entry matches into named proposals.

    ``predictions`` carry each interviewee turn's ``text`` (or ``turns`` provide it by id)
    and its ``scores``; ``rejected`` are earlier rejected proposals to leave out. Degenerate
    inputs return no proposals and a ``message`` saying why."""
    started = time.perf_counter()
    config = config or DiscoverConfig()
    result = DiscoveryResult(proposals=[])
    rows, min_interviews = start(predictions, turns, config, result)
    if not rows:
        return result
    passages = select_passages(rows, turns, catalog, config, result)
    pool = build_pool(passages, catalog, embedder, config, result, progress=progress)
    result.message = pool_message(len(pool.passages), result, config)
    if result.message:
        return result
    proposals = group_and_name(pool, embedder, config, min_interviews, result)
    proposals, result.stats["merged_duplicates"] = merge_near_duplicates(proposals, config)
    proposals = set_aside(leave_out_known(proposals, catalog, rejected, config, result), config, result)
    proposals.sort(key=lambda p: (bool(p.kind), -p.n_interviews, -p.size, -p.cohesion, p.id))
    if config.max_proposals:
        proposals = proposals[: config.max_proposals]
    result.stats["proposals"] = len(proposals)
    result.stats["seconds"] = round(time.perf_counter() - started, 2)
    if not proposals:
        prev = result.stats.get("previously_rejected")
        result.message = (f"{len(pool.passages)} unmatched turns formed no cluster of at least "
                          f"{config.min_cluster_size} turns from {min_interviews}+ interviews"
                          + (f" ({prev} matched rejected proposals)" if prev else ""))
    result.proposals = proposals
    return result


def discover(predictions: Iterable[Prediction | Mapping[str, Any]], turns: Sequence[Turn] | None, catalog: Catalog,
             embedder: Any, config: DiscoverConfig | None = None, *,
             rejected: Sequence[Mapping[str, Any]] = ()) -> list[Proposal]:
    """Proposals for new catalog entries (see :func:`run_discovery`; degenerate inputs are
    logged and give ``[]``)."""
    result = run_discovery(predictions, turns, catalog, embedder, config, rejected=rejected)
    for w in result.warnings:
        log.warning(w)
    if result.message:
        log.warning(result.message)
    return result.proposals

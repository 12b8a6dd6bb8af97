"""``.qdpx`` import: a project coded by humans -> :class:`Labels` per turn id, for training."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from extractor.catalog import Catalog
from extractor.errors import InputError
from extractor.qdpx.codes import MITIGATION_CODE, ROOT_CATEGORIES, ROOT_PHASES
from extractor.qdpx.read import Project, Selection, Source, read_qdpx
from extractor.qdpx.sources import aligned, build_sources, source_range
from extractor.types import Labels, Turn

log = logging.getLogger(__name__)


def resolve_codes(project: Project, catalog: Catalog) -> tuple[dict[str, set[str]], list[str]]:
    """Code GUID -> label ids it stands for, matching (case-insensitively) the catalog id,
    the entry name, or one of the entry's study codes; also the names that matched nothing."""
    keys: dict[str, set[str]] = defaultdict(set)
    for e in (*catalog.categories, *catalog.phases):
        for k in (e.id, e.name, *e.codes):
            keys[k.strip().lower()].add(e.id)
    for k in ("mitigation", MITIGATION_CODE, *catalog.extra.get("mitigation_codes", [])):
        keys[str(k).strip().lower()].add("mitigation")
    phase_ids = set(catalog.phase_ids)
    out: dict[str, set[str]] = {}
    unmatched = []
    for guid, (name, parent) in project.codes.items():
        labels = set(keys.get(name.strip().lower(), set()))
        # The same display name can be a category and a phase: the exported hierarchy decides.
        parent_name = project.codes.get(parent, ("", None))[0] if parent else ""
        if parent_name == ROOT_PHASES:
            labels = {lab for lab in labels if lab in phase_ids} or labels
        elif parent_name == ROOT_CATEGORIES:
            labels = {lab for lab in labels if lab not in phase_ids and lab != "mitigation"} or labels
        if labels:
            out[guid] = labels
        elif name not in (ROOT_CATEGORIES, ROOT_PHASES):
            unmatched.append(name)
    return out, sorted(set(unmatched))


def overlaps(sel: Selection, start: int, end: int) -> bool:
    # A selection codes a turn when it covers half the turn or half of itself lies in it;
    # a few characters spilling into the next turn do not count.
    ov = min(sel.end, end) - max(sel.start, start)
    return ov > 0 and (2 * ov >= end - start or 2 * ov >= sel.end - sel.start)


def source_turns_of(path: str | Path, src: Source, by_name: Mapping[str, list[Turn]] | None
                    ) -> tuple[list[Turn], dict[str, tuple[int, int]]] | None:
    """The turns of one source and their ranges in it: the given turns of the interview of
    that name, else the source segmented; None (with a warning) when no given turn matches."""
    for sel in src.selections:
        if not 0 <= sel.start <= sel.end <= len(src.text):
            raise InputError(path, f"selections within source {src.name!r} ({len(src.text)} characters)",
                             f"range {sel.start}-{sel.end}")
    if by_name is None:
        ts = segment_text(src)
        return ts, {t.id: source_range(t) for t in ts}
    given = by_name.get(src.name)
    if not given:
        log.warning("%s: source %r matches no interview of the given turns; skipped", path, src.name)
        return None
    return given, ranges_in(src, given)


def turn_labels(src: Source, ts: Sequence[Turn], ranges: Mapping[str, tuple[int, int]],
                code_labels: Mapping[str, set[str]], catalog: Catalog, negatives: bool) -> dict[str, Labels]:
    phase_ids, cat_ids = set(catalog.phase_ids), set(catalog.category_ids)
    out: dict[str, Labels] = {}
    for t in ts:
        if not t.is_interviewee or t.id not in ranges:
            continue
        start, end = ranges[t.id]
        found: set[str] = set()
        for sel in src.selections:
            if overlaps(sel, start, end):
                for g in sel.codes:
                    found |= code_labels.get(g, set())
        if found or negatives:
            out[t.id] = Labels(categories=tuple(c for c in catalog.category_ids if c in found & cat_ids),
                               phases=tuple(p for p in catalog.phase_ids if p in found & phase_ids),
                               mitigation="mitigation" in found)
    return out


def import_labels(path: str | Path, catalog: Catalog, turns: Sequence[Turn] | None = None, *,
                  negatives: bool = True) -> tuple[dict[str, Labels], dict[str, list[Turn]], list[str]]:
    """Labels per turn id from a human-coded project.

    ``turns`` locate turns in the sources (matched by interview name = source name, ranges
    from ``build_sources``); without them the sources are segmented with
    :mod:`extractor.segment`. With ``negatives``, every interviewee turn of a source that
    has at least one coding gets labels (empty when uncoded). Returns (labels by turn id,
    turns by source name, code names that matched no catalog entry).
    """
    project = read_qdpx(path)
    code_labels, unmatched = resolve_codes(project, catalog)
    if unmatched:
        log.warning("%s: %d codes match no catalog entry and were ignored: %s", path, len(unmatched),
                    ", ".join(unmatched[:10]))
    by_name: dict[str, list[Turn]] | None = None
    if turns is not None:
        by_name = defaultdict(list)
        for t in turns:
            by_name[t.interview].append(t)
    labels: dict[str, Labels] = {}
    source_turns: dict[str, list[Turn]] = {}
    for src in project.sources:
        found = source_turns_of(path, src, by_name) if src.selections else None
        if found is None:
            continue
        ts, ranges = found
        source_turns[src.name] = ts
        labels.update(turn_labels(src, ts, ranges, code_labels, catalog, negatives))
    return labels, source_turns, unmatched


def ranges_in(src: Source, ts: Sequence[Turn]) -> dict[str, tuple[int, int]]:
    """Turn ranges in this source: its own offsets when they fit, else the synthetic layout."""
    if aligned(src.text, ts):
        return {t.id: source_range(t) for t in ts}
    built = build_sources(ts)[0]
    if built.text != src.text:
        raise InputError(src.name, "turns whose text or offsets match the project's source text",
                         "a source that differs from the given turns",
                         hint="segment the project's sources instead (omit --turns)")
    return built.ranges


def segment_text(src: Source) -> list[Turn]:
    import tempfile

    from extractor.segment import segment_file

    # The source name comes from the archive: it names the interview, never the file.
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "source.txt"
        p.write_text(src.text, encoding="utf-8")
        res = segment_file(p, interview=src.name, max_bytes=0)
        ts = list(getattr(res, "turns", res))
    return [t for t in ts if t.source and "start" in t.source]


def labelled_turns(labels: Mapping[str, Labels], source_turns: Mapping[str, Sequence[Turn]],
                   label_source: str = "qdpx") -> list[Turn]:
    """Turns with the imported labels attached: a gold-like turns file for ``extractor train``."""
    from dataclasses import replace

    out = []
    for ts in source_turns.values():
        for t in ts:
            lab = labels.get(t.id)
            out.append(replace(t, labels=lab, label_source=label_source if lab is not None else None, codes=None))
    return out

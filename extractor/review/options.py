"""Option ids of a review task and the hashes Prodigy keys tasks by.

Option ids encode the three label kinds: ``cat:<category id>``, ``phase:<phase id>`` and
the single option ``mitigation`` (the turn describes a fix).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timezone

from extractor.catalog import Catalog
from extractor.types import MITIGATION, Labels

CAT, PHASE = "cat:", "phase:"
MITIGATION_TEXT = "Mitigation (the turn describes a fix)"
MITIGATION_DEFINITION = "The turn describes how the issue was fixed, avoided or worked around."


def option_ids(catalog: Catalog) -> list[str]:
    """Every option of a task, in catalog order: categories, phases, mitigation."""
    return [CAT + c for c in catalog.category_ids] + [PHASE + p for p in catalog.phase_ids] + [MITIGATION]


def option_kind(option_id: str) -> str:
    """``category``, ``phase`` or ``mitigation``."""
    return "category" if option_id.startswith(CAT) else "phase" if option_id.startswith(PHASE) else "mitigation"


def label_key(option_id: str) -> str:
    """``cat:drift`` -> ``drift`` (the key of ``Prediction.scores``)."""
    for prefix in (CAT, PHASE):
        if option_id.startswith(prefix):
            return option_id[len(prefix):]
    return option_id


def option_names(catalog: Catalog) -> dict[str, str]:
    """Option id -> the name a reviewer reads."""
    names = {CAT + e.id: e.name for e in catalog.categories} | {PHASE + e.id: e.name for e in catalog.phases}
    names[MITIGATION] = MITIGATION_TEXT
    return names


def option_definitions(catalog: Catalog) -> dict[str, str]:
    """Option id -> the catalog's definition (what counts and what does not, where given)."""
    out: dict[str, str] = {}
    for prefix, entries in ((CAT, catalog.categories), (PHASE, catalog.phases)):
        for e in entries:
            parts = [e.definition.strip()]
            if e.include.strip():
                parts.append("Counts: " + e.include.strip())
            if e.exclude.strip():
                parts.append("Does not count: " + e.exclude.strip())
            out[prefix + e.id] = " ".join(p for p in parts if p)
    out[MITIGATION] = MITIGATION_DEFINITION
    return out


def resolve_label(name: str, catalog: Catalog) -> str | None:
    """A doccano label (``cat:x``, ``phase:x``, a bare id or ``mitigation``) -> option id."""
    cats, phases = set(catalog.category_ids), set(catalog.phase_ids)
    if name == MITIGATION:
        return MITIGATION
    if name.startswith(CAT) and name[len(CAT):] in cats:
        return name
    if name.startswith(PHASE) and name[len(PHASE):] in phases:
        return name
    if name in cats:
        return CAT + name
    if name in phases:
        return PHASE + name
    return None


def labels_to_accept(labels: Labels) -> list[str]:
    """Labels -> the option ids a task's ``accept`` holds."""
    return ([CAT + c for c in labels.categories] + [PHASE + p for p in labels.phases]
            + ([MITIGATION] if labels.mitigation else []))


def accept_to_labels(accept: Iterable[str]) -> Labels:
    """A task's ``accept`` option ids -> labels."""
    accept = list(accept)
    return Labels(
        categories=tuple(a[len(CAT):] for a in accept if a.startswith(CAT)),
        phases=tuple(a[len(PHASE):] for a in accept if a.startswith(PHASE)),
        mitigation=MITIGATION in accept,
    )


def hash32(*parts: str) -> int:
    """Signed 32-bit hash, the shape of Prodigy's ``_input_hash`` / ``_task_hash``."""
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def input_hash(turn_id: str) -> int:
    return hash32("input", turn_id)


def task_hash(turn_id: str, options: Iterable[str]) -> int:
    return hash32("task", turn_id, *sorted(options))


ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def now_iso() -> str:
    """The current UTC time as an answer's ``timestamp``."""
    return datetime.now(timezone.utc).strftime(ISO_FORMAT)


def iso_from_epoch(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime(ISO_FORMAT)

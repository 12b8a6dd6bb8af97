"""Proposals after discovery: the records, a reviewer's decisions, the reject memory, catalog edits.

:mod:`extractor.discover` clusters turns into :class:`Proposal` records and decides
nothing. A reviewer sets ``"decision": "accept"`` or ``"reject"`` on lines of
``proposals.jsonl``; :func:`apply_decisions` adds accepted ones to the catalog
(:func:`accept_proposal`, a new catalog version) and appends rejected ones to a reject
memory (:func:`reject_proposal`) that the next discovery reads to leave them out.

The reject memory is user state: it lives where the caller says (by default beside the
proposals file, see :func:`default_rejected_path`), never inside the installed package.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from extractor.catalog import Catalog, Entry, load_catalog
from extractor.errors import InputError

DECISIONS = ("accept", "reject", "merge", "subtype")
REJECTED_FILE = "rejected_proposals.jsonl"


def default_rejected_path(beside: str | Path) -> Path:
    """The reject memory for a proposals file (or an output directory): ``rejected_proposals.jsonl``
    in the same directory, so each project keeps its own decisions."""
    p = Path(beside)
    return (p if p.is_dir() else p.parent) / REJECTED_FILE


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
    def from_dict(cls, d: Mapping[str, Any]) -> Quote:
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
    kind: str = ""  # "" or what discovery set it aside as: "introductions", "small talk"
    why_not: str = ""  # why the nearest catalog entry is not this proposal
    merge_into: str = ""  # decision "merge": the proposal (id) this one joins
    subtype_of: str = ""  # decision "subtype": the catalog entry (id) this one is a kind of
    decided_by: str = ""
    decided_at: str = ""

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
            "kind": self.kind,
            "why_not": self.why_not,
            "merge_into": self.merge_into,
            "subtype_of": self.subtype_of,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Proposal:
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
            kind=str(d.get("kind") or ""),
            why_not=str(d.get("why_not") or ""),
            merge_into=str(d.get("merge_into") or ""),
            subtype_of=str(d.get("subtype_of") or ""),
            decided_by=str(d.get("decided_by") or ""),
            decided_at=str(d.get("decided_at") or ""),
        )


def proposal_id(member_ids: Iterable[str]) -> str:
    """Stable id of a cluster: hash of its sorted member turn ids."""
    blob = "\n".join(sorted(member_ids))
    return "p-" + hashlib.sha1(blob.encode("utf-8")).hexdigest()[:12]



def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:48].strip("-") or "proposal"


# --- rejected-proposal memory -----------------------------------------------------------


def load_rejected(path: str | Path) -> list[dict[str, Any]]:
    """Rejected proposals recorded so far in the memory file ``path`` (``[]`` when it does not exist)."""
    from extractor.jsonl import enumerate_lines

    path = Path(path)
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


def reject_proposal(proposal: Proposal, path: str | Path, *, reason: str = "") -> None:
    """Remember a rejected proposal: append one line to the memory file ``path`` (never rewritten)."""
    import os
    from datetime import datetime, timezone

    path = Path(path)
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
    return add_to_catalog(path, entry)


def add_to_catalog(path: str | Path, entry: Entry) -> Catalog:
    """The one place discovery edits a catalog file: add ``entry`` as a new category
    (a new catalog version); :mod:`extractor.catalog` owns how the file is rewritten."""
    from extractor.catalog import add_category

    return add_category(path, entry)


def check_decision(path: str | Path, n: int, obj: Mapping[str, Any]) -> None:
    """A decision is one of :data:`DECISIONS` (or none); merge and subtype name their target."""
    decision = obj.get("decision")
    if decision not in (None, "", *DECISIONS):
        raise InputError(path, 'decision "accept", "reject", "merge", "subtype" or null', repr(decision), line=n)
    for what, key in (("merge", "merge_into"), ("subtype", "subtype_of")):
        if decision == what and not (isinstance(obj.get(key), str) and obj.get(key)):
            raise InputError(path, f'decision "{what}" with the id of its target in "{key}"',
                             repr(obj.get(key))[:60], line=n)


def read_proposals(path: str | Path) -> list[tuple[int, Proposal]]:
    """``(line, Proposal)`` per line of a proposals JSONL file, validating the decision fields."""
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
        check_decision(path, n, obj)
        out.append((n, Proposal.from_dict(obj)))
    ids = {p.id for _, p in out}
    for n, p in out:
        if p.decision == "merge" and (p.merge_into not in ids or p.merge_into == p.id):
            raise InputError(path, "merge_into naming another proposal of the file", repr(p.merge_into), line=n)
    return out


def merged_members(rows: Sequence[tuple[int, Proposal]]) -> dict[str, tuple[str, ...]]:
    """Each proposal's members with those of the proposals merged into it (transitively)."""
    by_id = {p.id: p for _, p in rows}

    def root(p: Proposal) -> str:
        seen = {p.id}
        while p.decision == "merge" and p.merge_into in by_id and p.merge_into not in seen:
            p = by_id[p.merge_into]
            seen.add(p.id)
        return p.id

    members: dict[str, set[str]] = {pid: set(p.members) for pid, p in by_id.items()}
    for p in by_id.values():
        r = root(p)
        if r != p.id:
            members[r] |= set(p.members)
    return {pid: tuple(sorted(m)) for pid, m in members.items()}


def apply_decisions(proposals_path: str | Path, catalog_path: str | Path | None = None,
                    rejected_path: str | Path | None = None) -> dict[str, list[str]]:
    """Apply reviewers' decisions of a proposals file: accept -> catalog entry (new version;
    the members of proposals merged into it count as its own), reject -> memory file (default:
    :func:`default_rejected_path` beside the proposals file), subtype -> memory too (its turns
    belong to an existing entry: not proposed again), merge -> follows its target. Undecided
    lines are left alone. Returns ids per outcome."""
    rows = read_proposals(proposals_path)
    members = merged_members(rows)
    rejected_path = Path(rejected_path) if rejected_path else default_rejected_path(proposals_path)
    rejected = load_rejected(rejected_path)
    done: dict[str, list[str]] = {"accepted": [], "rejected": [], "subtype": [], "merged": [], "undecided": [],
                                  "skipped": []}
    for _, p in rows:
        if p.decision == "accept":
            try:
                cat = accept_proposal(replace(p, members=members[p.id]), catalog_path, name=p.name,
                                      definition=p.definition or None)
            except InputError as e:
                if "already entry" in e.found:
                    done["skipped"].append(p.id)
                    continue
                raise
            done["accepted"].append(cat.categories[-1].id)
        elif p.decision in ("reject", "subtype"):
            if any(r.get("id") == p.id for r in rejected):
                done["skipped"].append(p.id)
                continue
            reason = f"sub-type of {p.subtype_of}" if p.decision == "subtype" else ""
            reject_proposal(replace(p, members=members[p.id]), rejected_path, reason=reason)
            rejected.append({"id": p.id, "members": list(members[p.id])})
            done["rejected" if p.decision == "reject" else "subtype"].append(p.id)
        elif p.decision == "merge":
            done["merged"].append(p.id)
        else:
            done["undecided"].append(p.id)
    return done


def update_proposal(path: str | Path, proposal_id: str, changes: Mapping[str, Any]) -> Proposal:
    """Change fields of one line of a proposals file, under the file's writer lock (re-read
    inside it, so decisions saved meanwhile by others stay) and written atomically."""
    from extractor.jsonl import atomic_open, enumerate_lines
    from extractor.safeio import locked

    path = Path(path)
    with locked(path):
        rows = [dict(obj) for _, obj in enumerate_lines(path)]
        hit = next((r for r in rows if r.get("id") == proposal_id), None)
        if hit is None:
            raise LookupError(f"{path}: expected a proposal {proposal_id!r}, found none")
        hit.update(changes)
        check_decision(path, 1 + rows.index(hit), hit)
        with atomic_open(path) as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return Proposal.from_dict(hit)

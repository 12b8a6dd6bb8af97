"""``.qdpx`` export: the transcripts as sources, one coded selection per code on each turn.

A model's code is the tool's coding (user ``qi-extractor``), its confidence first in the
selection's description ("a suggestion to check"); a code a person gave or confirmed
(``label_source == "human"``) is that reviewer's coding: a REFI-QDA user with the
reviewer's name creates the selection and the coding, at the time of the review.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from extractor import __version__
from extractor.catalog import Catalog
from extractor.jsonl import atomic_open
from extractor.qdpx.codes import NS_PROJECT, add_codes, code_guids, code_names, stable_guid, xml_safe
from extractor.qdpx.sources import SourceText, build_sources
from extractor.types import Prediction, Turn

log = logging.getLogger(__name__)

_ZIP_TIME = (2020, 1, 1, 0, 0, 0)
TOOL_USER = "qi-extractor"
UNNAMED_REVIEWER = "reviewer"
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def _n(tag: str) -> str:
    return f"{{{NS_PROJECT}}}{tag}"


def labels_of(p: Prediction) -> list[str]:
    return [*p.categories, *p.phases, *(["mitigation"] if p.mitigation else [])]


def reviewer_of(p: Prediction) -> str | None:
    """The reviewer's name for a person's labels, None for the model's."""
    return (p.reviewer or UNNAMED_REVIEWER) if p.label_source == "human" else None


def coding_description(p: Prediction, label: str, name: str, catalog: Catalog) -> str:
    """What a coded selection says about itself.

    A model's code: "confidence 0.72 | Drift | machine-coded ...": the confidence first and
    always with two decimals, so a text search for "confidence 0.9" in a CAQDAS tool finds
    the codings at 0.90-0.99. A reviewer's code: "reviewed | Drift | coded by reviewer ...".
    """
    score = float(p.scores.get(label, 0.0)) if p.scores else 0.0
    model = f" by model {p.model}" if p.model else ""
    reviewer = reviewer_of(p)
    if reviewer is not None:
        when = f" on {p.reviewed_at}" if p.reviewed_at else ""
        return (f"reviewed | {name} | coded by reviewer {reviewer}{when} with catalog {catalog.tag}; "
                f"a person's coding (the model's score was {score:.2f})")
    untrained = "; a new catalog entry the model was not trained on" if label in p.untrained else ""
    return (f"confidence {score:.2f} | {name} | machine-coded{model} with catalog {catalog.tag}; "
            f"a suggestion to check, not a human coding{untrained}")


class Users:
    """The project's REFI-QDA users: the tool, and one per reviewer (GUIDs stable by name)."""

    def __init__(self, root: ET.Element, tool: str, created: str) -> None:
        self.el = ET.SubElement(root, _n("Users"))
        self.tool = self.add(tool, ("user", tool))
        self.created = created

    def add(self, name: str, key: tuple[str, ...]) -> str:
        guid = stable_guid(*key)
        if self.el.find(f"{_n('User')}[@guid='{guid}']") is None:
            ET.SubElement(self.el, _n("User"), {"guid": guid, "name": name})
        return guid

    def of(self, p: Prediction) -> tuple[str, str]:
        """(user GUID, creation time) of ``p``'s codings."""
        reviewer = reviewer_of(p)
        if reviewer is None:
            return self.tool, self.created
        when = p.reviewed_at if _DATETIME.match(p.reviewed_at or "") else self.created
        return self.add(reviewer, ("user", "reviewer", reviewer)), when


def add_selections(el: ET.Element, s: SourceText, by_id: dict[str, Prediction], users: Users,
                   catalog: Catalog, unknown: set[str]) -> None:
    """One PlainTextSelection per code of each turn of ``s``: REFI-QDA gives a Coding no
    description of its own, so the selection's Description carries that coding's confidence."""
    guids, names = code_guids(catalog), code_names(catalog)
    for tid, (start, end) in sorted(s.ranges.items(), key=lambda kv: kv[1]):
        p = by_id.get(tid)
        if p is None:
            continue
        user, when = users.of(p)
        for lab in labels_of(p):
            if lab not in guids:
                unknown.add(lab)
                continue
            sel = ET.SubElement(el, _n("PlainTextSelection"), {
                "guid": stable_guid("selection", s.name, tid, lab), "name": f"{s.name} turn {p.turn}: {names[lab]}",
                "startPosition": str(start), "endPosition": str(end), "creatingUser": user,
                "creationDateTime": when})
            ET.SubElement(sel, _n("Description")).text = coding_description(p, lab, names[lab], catalog)
            c = ET.SubElement(sel, _n("Coding"), {"guid": stable_guid("coding", s.name, tid, lab),
                                                  "creatingUser": user, "creationDateTime": when})
            ET.SubElement(c, _n("CodeRef"), {"targetGUID": guids[lab]})


def project_xml(sources: Sequence[SourceText], predictions: Sequence[Prediction], catalog: Catalog, *,
                name: str = "qi-extractor", created: str | None = None, user: str = TOOL_USER) -> bytes:
    """``project.qde``: users, the codebook (a colour per code), one TextSource per interview
    with one PlainTextSelection per coded turn and label, its confidence in its Description."""
    ET.register_namespace("", NS_PROJECT)
    created = created or datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    root = ET.Element(_n("Project"), {"name": name, "origin": f"qi-extractor {__version__}",
                                      "creatingUserGUID": stable_guid("user", user), "creationDateTime": created})
    users = Users(root, user, created)
    add_codes(ET.SubElement(root, _n("CodeBook")), NS_PROJECT, catalog)
    by_id = {p.id: p for p in predictions}
    src_el = ET.SubElement(root, _n("Sources"))
    unknown: set[str] = set()
    for s in sources:
        sguid = stable_guid("source", s.name)
        el = ET.SubElement(src_el, _n("TextSource"), {"guid": sguid, "name": s.name,
                                                      "plainTextPath": f"internal://{sguid}.txt",
                                                      "creatingUser": users.tool, "creationDateTime": created})
        add_selections(el, s, by_id, users, catalog, unknown)
    if unknown:
        log.warning("labels absent from %s were not exported: %s", catalog.tag, sorted(unknown))
    xml_safe(root)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def export_qdpx(path: str | Path, turns: Sequence[Turn], predictions: Sequence[Prediction], catalog: Catalog, *,
                name: str = "qi-extractor", created: str | None = None,
                sources: Sequence[str | Path] = ()) -> dict[str, int]:
    """Write a ``.qdpx`` project atomically; return counts (sources, selections, codings).

    ``sources``: the transcript files or folders the user gave; a turn's original transcript
    is embedded only from there (see :mod:`extractor.qdpx.sources`), else a synthetic one.
    """
    texts = build_sources(turns, sources)
    xml = project_xml(texts, predictions, catalog, name=name, created=created)
    root = ET.fromstring(xml)  # what we write must parse: checked before anything is on disk
    with atomic_open(path, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            def put(arcname: str, data: bytes) -> None:
                info = zipfile.ZipInfo(arcname, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)

            put("project.qde", xml)
            for s in texts:
                put(f"sources/{stable_guid('source', s.name)}.txt", s.text.encode("utf-8", "replace"))
    return {"sources": len(texts),
            "selections": len(root.findall(f".//{{{NS_PROJECT}}}PlainTextSelection")),
            "codings": len(root.findall(f".//{{{NS_PROJECT}}}Coding"))}

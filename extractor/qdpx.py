"""REFI-QDA exchange (QDA-XML 1.0): ``.qdpx`` projects and ``.qdc`` codebooks.

The format is read and written by ATLAS.ti, NVivo, MAXQDA and QualCoder. Export:
sources = the transcripts (plain text), codes = the catalog (categories, phases and a
``Mitigation`` code, each its own colour: :func:`code_colors`), coded selections = one per
predicted label on each turn's character range, its confidence in the selection's Description.
Import: a project coded by humans -> :class:`Labels` per turn id, for training.

A ``.qdpx`` is a zip holding ``project.qde`` (XML, namespace ``urn:QDA-XML:project:1.0``)
and ``sources/<guid>.txt``. GUIDs are UUID5 of stable names, so exporting the same
input twice gives the same bytes (given the same ``created`` time).
"""

from __future__ import annotations

import logging
import re
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from extractor import __version__
from extractor.catalog import Catalog
from extractor.errors import InputError
from extractor.jsonl import atomic_open
from extractor.types import Labels, Prediction, Turn, normalize_text

log = logging.getLogger(__name__)

NS_PROJECT = "urn:QDA-XML:project:1.0"
NS_CODEBOOK = "urn:QDA-XML:codebook:1.0"
_UUID_NS = uuid.UUID("5b0c3e8e-2f7a-4c56-9a39-0d3c1e0a9f11")  # fixed: GUIDs stay stable across runs
ROOT_CATEGORIES, ROOT_PHASES, MITIGATION_CODE = "Issue categories", "Lifecycle phases", "Mitigation"
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def stable_guid(*parts: str) -> str:
    return str(uuid.uuid5(_UUID_NS, "\x1f".join(parts)))


# --- sources ----------------------------------------------------------------


@dataclass
class SourceText:
    """One interview as a plain-text source, with each turn's ``[start, end)`` range in it."""

    name: str
    text: str
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    file: str = ""


def _aligned(text: str, turns: Sequence[Turn]) -> bool:
    for t in turns:
        s = t.source or {}
        start, end = s.get("start"), s.get("end")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
            return False
        words = normalize_text(t.text).split()
        if words and words[0] not in text[start:end]:
            return False
    return True


def _read_source_file(turns: Sequence[Turn]) -> tuple[str, str] | None:
    """The transcript file the turns were segmented from, if its offsets still match it."""
    files = {str((t.source or {}).get("file") or "") for t in turns}
    if len(files) != 1 or not next(iter(files)):
        return None
    from extractor.safeio import is_regular, read_capped

    path = Path(next(iter(files)))
    if not is_regular(path) or path.suffix.lower() not in (".txt", ".md", ".markdown"):
        return None
    try:
        raw = read_capped(path, MAX_SOURCE_BYTES).decode("utf-8", errors="replace")
    except InputError:
        return None  # too large or unreadable: the synthetic source is used instead
    universal = raw.replace("\r\n", "\n").replace("\r", "\n")
    for text in (universal, raw):  # universal newlines first, then raw
        if _aligned(text, turns):
            return str(path), text
    return None


def build_sources(turns: Iterable[Turn]) -> list[SourceText]:
    """Group turns by interview; use the original transcript where the turns' ``source``
    offsets match it, otherwise a synthetic text of ``Speaker: text`` paragraphs."""
    by_iv: dict[str, list[Turn]] = defaultdict(list)
    for t in turns:
        by_iv[t.interview].append(t)
    out = []
    for iv, ts in by_iv.items():
        ts.sort(key=lambda t: t.turn)
        found = _read_source_file(ts)
        if found:
            path, text = found
            out.append(SourceText(iv, text, {t.id: (t.source["start"], t.source["end"]) for t in ts}, path))
            continue
        chunks, ranges, pos = [], {}, 0
        for t in ts:
            prefix = f"{t.speaker_raw or t.speaker.capitalize()}: "
            body = normalize_text(t.text)
            ranges[t.id] = (pos + len(prefix), pos + len(prefix) + len(body))
            chunk = prefix + body + "\n\n"
            chunks.append(chunk)
            pos += len(chunk)
        out.append(SourceText(iv, "".join(chunks), ranges))
    return out


# --- codes ------------------------------------------------------------------


def _code_el(parent: ET.Element, ns: str, guid: str, name: str, codable: bool, description: str = "",
             color: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ns}}}Code", {"guid": guid, "name": name, "isCodable": "true" if codable else "false"})
    if color:
        el.set("color", color)
    if description:
        ET.SubElement(el, f"{{{ns}}}Description").text = description
    return el


def code_guids(catalog: Catalog) -> dict[str, str]:
    """Label id (category, phase or ``mitigation``) -> code GUID."""
    g = {e.id: stable_guid(catalog.name, "code", e.id) for e in (*catalog.categories, *catalog.phases)}
    g["mitigation"] = stable_guid(catalog.name, "code", "mitigation")
    return g


# 64 colours picked greedily for the largest smallest CIELAB distance (Glasbey's method) from
# an sRGB grid, lightness 30-80 so both black and white text stay readable on them; any two
# differ by at least 19.8 delta-E.
PALETTE = (
    "#2288EE", "#00CC00", "#EE0000", "#EE00EE", "#CCAA88", "#AA2266", "#006622", "#00CCCC",
    "#CCCC00", "#0022EE", "#EEAAEE", "#EE8800", "#444466", "#882200", "#8844CC", "#88CC66",
    "#886600", "#88AACC", "#006666", "#EE6666", "#EE00AA", "#884444", "#666644", "#EE0066",
    "#2244AA", "#8866AA", "#668800", "#00CC88", "#CC66CC", "#AACCAA", "#88CC00", "#EE88AA",
    "#CCAA44", "#008800", "#880088", "#00AAEE", "#CC4400", "#008866", "#888888", "#AA00EE",
    "#AA88AA", "#CC0022", "#668844", "#AAAAEE", "#0088AA", "#0066AA", "#AA88EE", "#CC8844",
    "#4466EE", "#66AAAA", "#EEAAAA", "#44CCEE", "#6644EE", "#AAAA66", "#664422", "#AA2244",
    "#884466", "#AA6644", "#EEAA00", "#66CCAA", "#AACC44", "#EE66AA", "#EE8866", "#444488",
)


def code_colors(catalog: Catalog) -> dict[str, str]:
    """Label id -> ``#RRGGBB``: a distinct colour per code, stable across runs and catalog versions.

    Mitigation takes the first colour, categories the next ones in catalog order, phases
    the last ones counting down: adding an entry at the end of a list never recolours an
    existing code. Past 64 codes colours repeat (with a warning).
    """
    cats, phases = list(catalog.category_ids), list(catalog.phase_ids)
    n = len(PALETTE)
    if 1 + len(cats) + len(phases) > n:
        log.warning("%s has %d codes, more than the %d distinct colours: some codes share a colour",
                    catalog.tag, 1 + len(cats) + len(phases), n)
    out = {"mitigation": PALETTE[0]}
    out.update({c: PALETTE[(1 + i) % n] for i, c in enumerate(cats)})
    out.update({p: PALETTE[(n - 1 - i) % n] for i, p in enumerate(phases)})
    return out


def _codes(parent: ET.Element, ns: str, catalog: Catalog) -> None:
    guids = code_guids(catalog)
    colors = code_colors(catalog)
    codes = ET.SubElement(parent, f"{{{ns}}}Codes")
    root = _code_el(codes, ns, stable_guid(catalog.name, "root", "categories"), ROOT_CATEGORIES, False,
                    f"Issue categories of {catalog.tag}")
    for e in catalog.categories:
        _code_el(root, ns, guids[e.id], e.name, True, f"{e.definition} [id: {e.id}]", colors[e.id])
    root = _code_el(codes, ns, stable_guid(catalog.name, "root", "phases"), ROOT_PHASES, False,
                    f"Lifecycle phases of {catalog.tag}")
    for e in catalog.phases:
        _code_el(root, ns, guids[e.id], e.name, True, f"{e.definition} [id: {e.id}]", colors[e.id])
    _code_el(codes, ns, guids["mitigation"], MITIGATION_CODE, True,
             "The turn describes how an issue was fixed or avoided [id: mitigation]", colors["mitigation"])


# XML 1.0 allows no control character but tab, LF and CR; ElementTree would write them anyway.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_safe(root: ET.Element) -> ET.Element:
    """Replace characters XML cannot hold (a control character in an interview name, say)
    with U+FFFD in every attribute and text, so the written document always parses."""
    for el in root.iter():
        for k, v in el.attrib.items():
            if _XML_INVALID.search(v):
                el.set(k, _XML_INVALID.sub("\ufffd", v))
        for attr in ("text", "tail"):
            v = getattr(el, attr)
            if v and _XML_INVALID.search(v):
                setattr(el, attr, _XML_INVALID.sub("\ufffd", v))
    return root


def codebook_xml(catalog: Catalog) -> bytes:
    """The catalog as a REFI-QDA codebook (``.qdc``, namespace ``urn:QDA-XML:codebook:1.0``)."""
    ET.register_namespace("", NS_CODEBOOK)
    root = ET.Element(f"{{{NS_CODEBOOK}}}CodeBook", {"origin": f"qi-extractor {__version__} ({catalog.tag})"})
    _codes(root, NS_CODEBOOK, catalog)
    _xml_safe(root)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def export_qdc(path: str | Path, catalog: Catalog) -> Path:
    with atomic_open(path, "wb") as fh:
        fh.write(codebook_xml(catalog))
    return Path(path)


# --- project export ---------------------------------------------------------


def _labels_of(p: Prediction) -> list[str]:
    return [*p.categories, *p.phases, *(["mitigation"] if p.mitigation else [])]


def coding_description(p: Prediction, label: str, name: str, catalog: Catalog) -> str:
    """What a coded selection says about itself: "confidence 0.72 | Drift | machine-coded ...".

    The confidence comes first and always with two decimals, so a text search for
    "confidence 0.9" in a CAQDAS tool finds the codings at 0.90-0.99.
    """
    score = float(p.scores.get(label, 0.0)) if p.scores else 0.0
    model = f" by model {p.model}" if p.model else ""
    return (f"confidence {score:.2f} | {name} | machine-coded{model} with catalog {catalog.tag}; "
            "a suggestion to check, not a human coding")


def project_xml(sources: Sequence[SourceText], predictions: Sequence[Prediction], catalog: Catalog, *,
                name: str = "qi-extractor", created: str | None = None, user: str = "qi-extractor") -> bytes:
    """``project.qde``: users, the codebook (a colour per code), one TextSource per interview
    with one PlainTextSelection per coded turn and label, its confidence in its Description."""
    ET.register_namespace("", NS_PROJECT)
    n = lambda tag: f"{{{NS_PROJECT}}}{tag}"  # noqa: E731
    created = created or datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    user_guid = stable_guid("user", user)
    root = ET.Element(n("Project"), {"name": name, "origin": f"qi-extractor {__version__}",
                                     "creatingUserGUID": user_guid, "creationDateTime": created})
    users = ET.SubElement(root, n("Users"))
    ET.SubElement(users, n("User"), {"guid": user_guid, "name": user})
    book = ET.SubElement(root, n("CodeBook"))
    _codes(book, NS_PROJECT, catalog)
    guids = code_guids(catalog)
    by_id = {p.id: p for p in predictions}
    src_el = ET.SubElement(root, n("Sources"))
    unknown: set[str] = set()
    names = {e.id: e.name for e in (*catalog.categories, *catalog.phases)}
    names["mitigation"] = MITIGATION_CODE
    for s in sources:
        sguid = stable_guid("source", s.name)
        el = ET.SubElement(src_el, n("TextSource"), {"guid": sguid, "name": s.name,
                                                     "plainTextPath": f"internal://{sguid}.txt",
                                                     "creatingUser": user_guid, "creationDateTime": created})
        for tid, (start, end) in sorted(s.ranges.items(), key=lambda kv: kv[1]):
            p = by_id.get(tid)
            labels = [lab for lab in (_labels_of(p) if p else []) if lab in guids or unknown.add(lab)]
            # One selection per code: REFI-QDA gives a Coding no description of its own, so the
            # selection's Description carries that coding's confidence (CAQDAS tools can search it).
            for lab in labels:
                sel = ET.SubElement(el, n("PlainTextSelection"), {
                    "guid": stable_guid("selection", s.name, tid, lab),
                    "name": f"{s.name} turn {p.turn}: {names[lab]}",
                    "startPosition": str(start), "endPosition": str(end), "creatingUser": user_guid,
                    "creationDateTime": created})
                ET.SubElement(sel, n("Description")).text = coding_description(p, lab, names[lab], catalog)
                c = ET.SubElement(sel, n("Coding"), {"guid": stable_guid("coding", s.name, tid, lab),
                                                     "creatingUser": user_guid, "creationDateTime": created})
                ET.SubElement(c, n("CodeRef"), {"targetGUID": guids[lab]})
    if unknown:
        log.warning("labels absent from %s were not exported: %s", catalog.tag, sorted(unknown))
    _xml_safe(root)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def export_qdpx(path: str | Path, turns: Sequence[Turn], predictions: Sequence[Prediction], catalog: Catalog, *,
                name: str = "qi-extractor", created: str | None = None) -> dict[str, int]:
    """Write a ``.qdpx`` project atomically; return counts (sources, selections, codings)."""
    sources = build_sources(turns)
    xml = project_xml(sources, predictions, catalog, name=name, created=created)
    root = ET.fromstring(xml)  # what we write must parse: checked before anything is on disk
    with atomic_open(path, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            def put(arcname: str, data: bytes) -> None:
                info = zipfile.ZipInfo(arcname, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)

            put("project.qde", xml)
            for s in sources:
                put(f"sources/{stable_guid('source', s.name)}.txt", s.text.encode("utf-8", "replace"))
    return {"sources": len(sources),
            "selections": len(root.findall(f".//{{{NS_PROJECT}}}PlainTextSelection")),
            "codings": len(root.findall(f".//{{{NS_PROJECT}}}Coding"))}


# --- import -----------------------------------------------------------------


@dataclass
class Selection:
    start: int
    end: int
    codes: list[str]  # code GUIDs
    user: str = ""


@dataclass
class Source:
    guid: str
    name: str
    text: str
    selections: list[Selection] = field(default_factory=list)


@dataclass
class Project:
    """What :func:`read_qdpx` takes from a project: codes (GUID -> (name, parent GUID)) and text sources."""

    codes: dict[str, tuple[str, str | None]]
    sources: list[Source]
    path: str = ""


MAX_QDE_BYTES = 64 * 2**20  # project.qde, inflated: ElementTree needs several times this in memory
MAX_SOURCE_BYTES = 64 * 2**20  # one plain-text source
MAX_QDE_ELEMENTS = 2_000_000  # about 200 MB as a tree; real projects hold tens of thousands


def _parse_xml(data: bytes, where: str) -> ET.Element:
    # REFI-QDA projects have no DTD; refusing one rules out entity expansion ("billion laughs")
    # and external entities whatever the XML parser's own defences.
    window = data[:131072]
    if any(m in window for m in (b"<!DOCTYPE", b"<!ENTITY", "<!DOCTYPE".encode("utf-16-le"),
                                 "<!DOCTYPE".encode("utf-16-be"))):
        raise InputError(where, "a project.qde without a DTD (<!DOCTYPE>/<!ENTITY>)", "a DTD",
                         hint="REFI-QDA projects do not use one; entities can expand without bound")
    # Parsed incrementally with an element budget: millions of tiny elements would take
    # gigabytes as a tree even when the file is under the byte cap.
    parser = ET.XMLPullParser(events=("start",))
    root, count = None, 0
    try:
        for k in range(0, max(len(data), 1), 2**20):
            parser.feed(data[k:k + 2**20])
            for _event, el in parser.read_events():
                if root is None:
                    root = el
                count += 1
                if count > MAX_QDE_ELEMENTS:
                    raise InputError(where, f"a project of at most {MAX_QDE_ELEMENTS:,} XML elements", "more",
                                     hint="split the project")
        parser.close()
        for _event, el in parser.read_events():
            root = root if root is not None else el
    except ET.ParseError as e:
        raise InputError(where, "well-formed XML", str(e), line=e.position[0]) from None
    except RecursionError:
        raise InputError(where, "XML nested at most a few hundred levels deep", "deeper nesting") from None
    if root is None:
        raise InputError(where, "well-formed XML", "no element")
    return root


def read_qdpx(path: str | Path) -> Project:
    """Parse a ``.qdpx`` (or a bare ``project.qde``) into codes, text sources and coded selections.

    Hostile archives are refused with one line (see :mod:`extractor.safeio`): zip bombs
    (declared sizes, ratios, and a hard cap while inflating), special files, a DTD, and any
    ``plainTextPath`` that would leave the archive (absolute, ``..``, ``internal://../``).
    """
    from extractor.safeio import is_regular, open_zip, read_capped, read_member

    path = Path(path)
    if not path.exists():
        raise InputError(path, "a .qdpx project file", "no such file")
    if not is_regular(path):
        read_capped(path, 1, what="a .qdpx project file")  # raises with the kind of file it is
    zf = None
    try:
        if zipfile.is_zipfile(path):
            zf = open_zip(path, what="a .qdpx project (a zip archive)", max_member=max(MAX_QDE_BYTES, MAX_SOURCE_BYTES))
            qde = [n for n in zf.namelist() if n.lower().endswith(".qde")]
            if not qde:
                raise InputError(path, "a zip with a project.qde file", f"{len(zf.namelist())} entries, no .qde",
                                 hint="is this a REFI-QDA .qdpx export?")
            data = read_member(zf, qde[0], path, max_bytes=MAX_QDE_BYTES)
        else:
            data = read_capped(path, MAX_QDE_BYTES, what="a .qdpx project file")
        root = _parse_xml(data, f"{path}!project.qde" if zf is not None else str(path))
        del data
        if root.tag != f"{{{NS_PROJECT}}}Project":
            raise InputError(path, f"a <Project> root in namespace {NS_PROJECT}", f"<{root.tag}>"[:120])
        n = lambda tag: f"{{{NS_PROJECT}}}{tag}"  # noqa: E731
        codes: dict[str, tuple[str, str | None]] = {}

        def walk(el: ET.Element, parent: str | None) -> None:
            for c in el.findall(n("Code")):
                codes[c.get("guid", "")] = (c.get("name", ""), parent)
                walk(c, c.get("guid"))

        book = root.find(n("CodeBook"))
        if book is not None and book.find(n("Codes")) is not None:
            walk(book.find(n("Codes")), None)
        sources = []
        for s in root.iter(n("TextSource")):
            text = _source_text(path, zf, s)
            src = Source(s.get("guid", ""), s.get("name", "") or s.get("guid", ""), text)
            for sel in s.findall(n("PlainTextSelection")):
                try:
                    start, end = int(sel.get("startPosition", "")), int(sel.get("endPosition", ""))
                except ValueError:
                    raise InputError(path, "integer startPosition/endPosition",
                                     f"{sel.get('startPosition')!r}-{sel.get('endPosition')!r} in selection "
                                     f"{sel.get('guid')}"[:160]) from None
                refs = [r.get("targetGUID", "") for c in sel.findall(n("Coding")) for r in c.findall(n("CodeRef"))]
                src.selections.append(Selection(min(start, end), max(start, end), refs, sel.get("creatingUser", "")))
            sources.append(src)
        return Project(codes, sources, str(path))
    finally:
        if zf is not None:
            zf.close()


def _decode_source(data: bytes, where: str) -> str:
    """A source's bytes as text: UTF-8 (BOM or not), UTF-16/32 with a BOM, else cp1252/Latin-1."""
    from extractor.segment import decode_bytes

    try:
        return data.decode("utf-8-sig")  # what REFI-QDA prescribes (and what we export)
    except UnicodeDecodeError:
        pass
    text, encoding, _notes = decode_bytes(data, where)
    if encoding not in ("utf-8", "utf-8-sig", "ascii"):
        log.warning("%s: not UTF-8; read as %s", where, encoding)
    return text


def _source_text(path: Path, zf: zipfile.ZipFile | None, el: ET.Element) -> str:
    """A source's plain text: inline ``PlainTextContent``, else the archive member its
    ``plainTextPath`` names (``internal://x.txt`` or a relative name), never anything outside
    the archive (or, for a bare ``project.qde``, outside its directory)."""
    from extractor.safeio import read_capped, read_member, safe_member_path

    content = el.find(f"{{{NS_PROJECT}}}PlainTextContent")
    if content is not None and content.text:
        return content.text
    ref = el.get("plainTextPath") or ""
    if not ref:
        return ""
    what = f"the plainTextPath of source {el.get('name')!r}"[:120]
    scheme, sep, rest = ref.partition("://")
    if sep and scheme.lower() not in ("internal", "relative"):
        raise InputError(path, f"{what} inside the project (internal://...)", f"{ref!r}"[:120],
                         hint="external sources are not read; export the project with its sources embedded")
    name = safe_member_path(rest if sep else ref, where=path, what=what)
    if zf is not None:
        names = {n.lower(): n for n in zf.namelist()}
        for cand in (f"sources/{name}", f"Sources/{name}", name):
            if cand.lower() in names:
                member = names[cand.lower()]
                return _decode_source(read_member(zf, member, path, max_bytes=MAX_SOURCE_BYTES), f"{path}!{member}")
    else:
        base = path.resolve().parent
        external = (base / name).resolve()
        if external.is_relative_to(base) and external.exists():
            return _decode_source(read_capped(external, MAX_SOURCE_BYTES, what="a source text file"), str(external))
    raise InputError(path, f"the plain text of source {el.get('name')!r}"[:120], f"no {ref!r} in the project"[:120])


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


def _overlaps(sel: Selection, start: int, end: int) -> bool:
    # A selection codes a turn when it covers half the turn or half of itself lies in it;
    # a few characters spilling into the next turn do not count.
    ov = min(sel.end, end) - max(sel.start, start)
    return ov > 0 and (2 * ov >= end - start or 2 * ov >= sel.end - sel.start)


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
    phase_ids, cat_ids = set(catalog.phase_ids), set(catalog.category_ids)
    by_name = defaultdict(list)
    for t in turns or ():
        by_name[t.interview].append(t)
    labels: dict[str, Labels] = {}
    source_turns: dict[str, list[Turn]] = {}
    for src in project.sources:
        if not src.selections:
            continue
        for sel in src.selections:
            if not 0 <= sel.start <= sel.end <= len(src.text):
                raise InputError(path, f"selections within source {src.name!r} ({len(src.text)} characters)",
                                 f"range {sel.start}-{sel.end}")
        if turns is not None:
            ts = by_name.get(src.name)
            if not ts:
                log.warning("%s: source %r matches no interview of the given turns; skipped", path, src.name)
                continue
            ranges = _ranges_in(src, ts)
        else:
            ts = _segment_text(src)
            ranges = {t.id: (t.source["start"], t.source["end"]) for t in ts}
        source_turns[src.name] = ts
        for t in ts:
            if not t.is_interviewee or t.id not in ranges:
                continue
            start, end = ranges[t.id]
            found: set[str] = set()
            for sel in src.selections:
                if _overlaps(sel, start, end):
                    for g in sel.codes:
                        found |= code_labels.get(g, set())
            if found or negatives:
                labels[t.id] = Labels(categories=tuple(c for c in catalog.category_ids if c in found & cat_ids),
                                      phases=tuple(p for p in catalog.phase_ids if p in found & phase_ids),
                                      mitigation="mitigation" in found)
    return labels, source_turns, unmatched


def _ranges_in(src: Source, ts: Sequence[Turn]) -> dict[str, tuple[int, int]]:
    """Turn ranges in this source: its own offsets when they fit, else the synthetic layout."""
    if _aligned(src.text, ts):
        return {t.id: (t.source["start"], t.source["end"]) for t in ts}
    built = build_sources(ts)[0]
    if built.text != src.text:
        raise InputError(src.name, "turns whose text or offsets match the project's source text",
                         "a source that differs from the given turns",
                         hint="segment the project's sources instead (omit --turns)")
    return built.ranges


def _segment_text(src: Source) -> list[Turn]:
    import tempfile

    try:
        from extractor.segment import segment_file
    except ImportError:  # pragma: no cover - segment is part of the package
        raise InputError(src.name, "turns for the project's sources", "no segmenter available",
                         hint="pass --turns") from None
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

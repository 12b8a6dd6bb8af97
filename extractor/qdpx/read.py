"""``.qdpx`` reading: a project's codes, text sources and coded selections, hostile archives refused.

Source names are labels: two sources with one name are both kept (the later ones renamed
``name (2)``, ``name (3)``, with a warning), and no name ever decides where anything is
read or written.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from extractor.errors import InputError
from extractor.qdpx.codes import NS_PROJECT
from extractor.qdpx.sources import MAX_SOURCE_BYTES
from extractor.qdpx.xmlsafe import read_xml

log = logging.getLogger(__name__)

MAX_QDE_BYTES = 64 * 2**20  # project.qde, inflated: ElementTree needs several times this in memory


def _n(tag: str) -> str:
    return f"{{{NS_PROJECT}}}{tag}"


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


def project_data(path: Path) -> tuple[bytes, zipfile.ZipFile | None]:
    """The bytes of ``project.qde`` (from the archive, or a bare ``.qde`` file) and the open archive."""
    from extractor.safeio import is_regular, open_zip, read_capped, read_member

    if not path.exists():
        raise InputError(path, "a .qdpx project file", "no such file")
    if not is_regular(path):
        read_capped(path, 1, what="a .qdpx project file")  # raises with the kind of file it is
    if not zipfile.is_zipfile(path):
        return read_capped(path, MAX_QDE_BYTES, what="a .qdpx project file"), None
    zf = open_zip(path, what="a .qdpx project (a zip archive)", max_member=max(MAX_QDE_BYTES, MAX_SOURCE_BYTES))
    try:
        qde = [n for n in zf.namelist() if n.lower().endswith(".qde")]
        if not qde:
            raise InputError(path, "a zip with a project.qde file", f"{len(zf.namelist())} entries, no .qde",
                             hint="is this a REFI-QDA .qdpx export?")
        return read_member(zf, qde[0], path, max_bytes=MAX_QDE_BYTES), zf
    except BaseException:
        zf.close()
        raise


def read_codes(root: ET.Element) -> dict[str, tuple[str, str | None]]:
    codes: dict[str, tuple[str, str | None]] = {}

    def walk(el: ET.Element, parent: str | None) -> None:
        for c in el.findall(_n("Code")):
            codes[c.get("guid", "")] = (c.get("name", ""), parent)
            walk(c, c.get("guid"))

    book = root.find(_n("CodeBook"))
    found = book.find(_n("Codes")) if book is not None else None
    if found is not None:
        walk(found, None)
    return codes


def read_selections(path: Path, s: ET.Element) -> list[Selection]:
    out = []
    for sel in s.findall(_n("PlainTextSelection")):
        try:
            start, end = int(sel.get("startPosition", "")), int(sel.get("endPosition", ""))
        except ValueError:
            raise InputError(path, "integer startPosition/endPosition",
                             f"{sel.get('startPosition')!r}-{sel.get('endPosition')!r} in selection "
                             f"{sel.get('guid')}"[:160]) from None
        refs = [r.get("targetGUID", "") for c in sel.findall(_n("Coding")) for r in c.findall(_n("CodeRef"))]
        out.append(Selection(min(start, end), max(start, end), refs, sel.get("creatingUser", "")))
    return out


def unique_name(name: str, seen: dict[str, int], path: Path) -> str:
    """``name``, or ``name (2)`` for its second source: a repeated name must not drop a source."""
    seen[name] = seen.get(name, 0) + 1
    if seen[name] == 1:
        return name
    new = f"{name} ({seen[name]})"
    while new in seen:
        new += "'"
    seen[new] = 1
    log.warning("%s: a second source named %r is read as %r", path, name, new)
    return new


def read_qdpx(path: str | Path) -> Project:
    """Parse a ``.qdpx`` (or a bare ``project.qde``) into codes, text sources and coded selections.

    Hostile archives are refused with one line (see :mod:`extractor.safeio`): zip bombs
    (declared sizes, ratios, and a hard cap while inflating), special files, a DTD anywhere
    (:mod:`extractor.qdpx.xmlsafe`), and any ``plainTextPath`` that would leave the archive
    (absolute, ``..``, ``internal://../``).
    """
    path = Path(path)
    data, zf = project_data(path)
    try:
        root = read_xml(data, f"{path}!project.qde" if zf is not None else str(path))
        del data
        if root.tag != _n("Project"):
            raise InputError(path, f"a <Project> root in namespace {NS_PROJECT}", f"<{root.tag}>"[:120])
        sources: list[Source] = []
        seen: dict[str, int] = {}
        for s in root.iter(_n("TextSource")):
            name = unique_name(s.get("name", "") or s.get("guid", ""), seen, path)
            sources.append(Source(s.get("guid", ""), name, source_text(path, zf, s), read_selections(path, s)))
        return Project(read_codes(root), sources, str(path))
    finally:
        if zf is not None:
            zf.close()


def decode_source(data: bytes, where: str) -> str:
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


def source_text(path: Path, zf: zipfile.ZipFile | None, el: ET.Element) -> str:
    """A source's plain text: inline ``PlainTextContent``, else the archive member its
    ``plainTextPath`` names (``internal://x.txt`` or a relative name), never anything outside
    the archive (or, for a bare ``project.qde``, outside its directory)."""
    from extractor.safeio import read_capped, read_member, safe_member_path

    content = el.find(_n("PlainTextContent"))
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
                return decode_source(read_member(zf, member, path, max_bytes=MAX_SOURCE_BYTES), f"{path}!{member}")
    else:
        base = path.resolve().parent
        external = (base / name).resolve()
        if external.is_relative_to(base) and external.exists():
            return decode_source(read_capped(external, MAX_SOURCE_BYTES, what="a source text file"), str(external))
    raise InputError(path, f"the plain text of source {el.get('name')!r}"[:120], f"no {ref!r} in the project"[:120])

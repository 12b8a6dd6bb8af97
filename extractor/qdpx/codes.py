"""The codebook side of REFI-QDA: stable GUIDs, a colour per code, ``<Code>`` elements, ``.qdc`` files."""

from __future__ import annotations

import logging
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from extractor import __version__
from extractor.catalog import Catalog
from extractor.jsonl import atomic_open

log = logging.getLogger(__name__)

NS_PROJECT = "urn:QDA-XML:project:1.0"
NS_CODEBOOK = "urn:QDA-XML:codebook:1.0"
_UUID_NS = uuid.UUID("5b0c3e8e-2f7a-4c56-9a39-0d3c1e0a9f11")  # fixed: GUIDs stay stable across runs
ROOT_CATEGORIES, ROOT_PHASES, MITIGATION_CODE = "Issue categories", "Lifecycle phases", "Mitigation"


def stable_guid(*parts: str) -> str:
    return str(uuid.uuid5(_UUID_NS, "\x1f".join(parts)))


def code_el(parent: ET.Element, ns: str, guid: str, name: str, codable: bool, description: str = "",
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


def code_names(catalog: Catalog) -> dict[str, str]:
    """Label id -> the code's name in the project."""
    names = {e.id: e.name for e in (*catalog.categories, *catalog.phases)}
    names["mitigation"] = MITIGATION_CODE
    return names


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


def add_codes(parent: ET.Element, ns: str, catalog: Catalog) -> None:
    """The catalog as ``<Codes>``: categories and phases under their roots, then Mitigation."""
    guids = code_guids(catalog)
    colors = code_colors(catalog)
    codes = ET.SubElement(parent, f"{{{ns}}}Codes")
    root = code_el(codes, ns, stable_guid(catalog.name, "root", "categories"), ROOT_CATEGORIES, False,
                   f"Issue categories of {catalog.tag}")
    for e in catalog.categories:
        code_el(root, ns, guids[e.id], e.name, True, f"{e.definition} [id: {e.id}]", colors[e.id])
    root = code_el(codes, ns, stable_guid(catalog.name, "root", "phases"), ROOT_PHASES, False,
                   f"Lifecycle phases of {catalog.tag}")
    for e in catalog.phases:
        code_el(root, ns, guids[e.id], e.name, True, f"{e.definition} [id: {e.id}]", colors[e.id])
    code_el(codes, ns, guids["mitigation"], MITIGATION_CODE, True,
            "The turn describes how an issue was fixed or avoided [id: mitigation]", colors["mitigation"])


# XML 1.0 allows no control character but tab, LF and CR; ElementTree would write them anyway.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_safe(root: ET.Element) -> ET.Element:
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
    add_codes(root, NS_CODEBOOK, catalog)
    xml_safe(root)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def export_qdc(path: str | Path, catalog: Catalog) -> Path:
    with atomic_open(path, "wb") as fh:
        fh.write(codebook_xml(catalog))
    return Path(path)

"""The one capped XML reader of the REFI-QDA importer: no DTD, a bounded number of elements and depth.

REFI-QDA projects never use a DTD, so any ``<!DOCTYPE`` or ``<!ENTITY`` anywhere in the
document is refused before the parser can expand an entity ("billion laughs") or reach an
external one: once by scanning the whole document (in the encodings XML allows without a
declaration), and again inside the parser, whose DOCTYPE and entity-declaration events
raise before anything is expanded (whatever the encoding or the padding before them).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.parsers import expat

from extractor.errors import InputError

MAX_ELEMENTS = 2_000_000  # about 200 MB as a tree; real projects hold tens of thousands
MAX_DEPTH = 256  # REFI-QDA nests codes a few levels deep
_MARKERS = tuple(m.encode(enc) for m in ("<!DOCTYPE", "<!ENTITY")
                 for enc in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"))
_CHUNK = 2**20


class _Refused(Exception):
    """Raised inside the parser's callbacks; turned into one InputError line."""

    def __init__(self, expected: str, found: str, hint: str = "") -> None:
        super().__init__(found)
        self.expected, self.found, self.hint = expected, found, hint


def refuse_dtd(where: str) -> InputError:
    return InputError(where, "a project.qde without a DTD (<!DOCTYPE>/<!ENTITY>)", "a DTD",
                      hint="REFI-QDA projects do not use one; entities can expand without bound")


class _Builder:
    """expat callbacks building an ElementTree, with the element and depth budgets."""

    def __init__(self, max_elements: int, max_depth: int) -> None:
        self.tree = ET.TreeBuilder()
        self.count = self.depth = 0
        self.max_elements, self.max_depth = max_elements, max_depth

    @staticmethod
    def name(n: str) -> str:
        return "{" + n if "}" in n else n  # expat's "ns}tag" as ElementTree's "{ns}tag"

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.count += 1
        self.depth += 1
        if self.count > self.max_elements:
            raise _Refused(f"a project of at most {self.max_elements:,} XML elements", "more", "split the project")
        if self.depth > self.max_depth:
            raise _Refused(f"XML nested at most {self.max_depth} levels deep", "deeper nesting")
        self.tree.start(self.name(tag), {self.name(k): v for k, v in attrs.items()})

    def end(self, tag: str) -> None:
        self.depth -= 1
        self.tree.end(self.name(tag))

    @staticmethod
    def dtd(*_args: object) -> None:
        raise _Refused("", "")


def parser_for(builder: _Builder) -> expat.XMLParserType:
    p = expat.ParserCreate(namespace_separator="}")
    p.buffer_text = True
    p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    p.StartElementHandler, p.EndElementHandler = builder.start, builder.end
    p.CharacterDataHandler = builder.tree.data
    p.StartDoctypeDeclHandler = p.EntityDeclHandler = builder.dtd
    return p


def read_xml(data: bytes, where: str, *, max_elements: int = MAX_ELEMENTS, max_depth: int = MAX_DEPTH) -> ET.Element:
    """Parse ``data`` into an element tree; refuse a DTD anywhere, more than ``max_elements``
    elements or ``max_depth`` levels, and malformed XML, each with one line naming ``where``."""
    if any(m in data for m in _MARKERS):
        raise refuse_dtd(where)
    builder = _Builder(max_elements, max_depth)
    p = parser_for(builder)
    try:
        for k in range(0, max(len(data), 1), _CHUNK):
            p.Parse(data[k:k + _CHUNK], False)
        p.Parse(b"", True)
        root = builder.tree.close()
    except _Refused as e:
        if not e.expected:
            raise refuse_dtd(where) from None
        raise InputError(where, e.expected, e.found, hint=e.hint or None) from None
    except expat.ExpatError as e:
        raise InputError(where, "well-formed XML", expat.ErrorString(e.code), line=e.lineno) from None
    except ValueError as e:  # pyexpat: "multi-byte encodings are not supported"
        raise InputError(where, "XML in UTF-8 or UTF-16", str(e)[:120]) from None
    except AssertionError:  # TreeBuilder.close() on a document without an element
        root = None
    if root is None:
        raise InputError(where, "well-formed XML", "no element")
    return root

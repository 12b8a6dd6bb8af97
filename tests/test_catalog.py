"""Tests for extractor.catalog and the content of annotations/catalog.yaml."""

from __future__ import annotations

import csv
import os
import re

import pytest
import yaml

from extractor.catalog import Entry, add_category, default_catalog_path, load_catalog, save_catalog
from extractor.errors import InputError

PHASES = ["data_collection", "data_preparation", "model_training", "model_evaluation", "model_deployment",
          "model_maintenance", "cross_cutting"]

MINI = """\
name: mini
version: 3
source: a citation
mitigation_codes: [A-fix]
phases:
- id: p1
  name: Phase one
  definition: The first phase.
categories:
- id: c1
  name: Cat one
  definition: The first category.
  include: what counts
  exclude:
  keywords: [alpha, beta]
  phases: [p1]
  codes: [A, A-fix]
"""


def _write(tmp_path, text, name="catalog.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped catalog ------------------------------------------------------------


def test_default_catalog_loads_with_28_categories_and_7_phases():
    cat = load_catalog()
    assert cat.version == 2 and cat.tag == "qi-catalog@2"
    assert len(cat.categories) == 28
    assert cat.phase_ids == PHASES
    assert cat.extra["source"] and "2306.15007" in cat.extra["source"]
    assert cat.extra["mitigation_codes"]
    assert default_catalog_path().as_posix().endswith("extractor/data/catalog.yaml")


def test_default_catalog_entries_are_filled_in():
    cat = load_catalog()
    for e in (*cat.categories, *cat.phases):
        assert "TODO" not in e.definition, e.id
        assert len(re.findall(r"[.!?](\s|$)", e.definition)) >= 2, f"{e.id}: definition needs 2-3 sentences"
        assert e.include and e.exclude, e.id
        assert 5 <= len(e.keywords) <= 10, e.id
        assert e.codes, e.id
    for e in cat.categories:
        assert len(e.examples) >= 3, f"{e.id}: give the classifier a few example utterances"
        assert e.phases and set(e.phases) <= set(PHASES), e.id
        assert e.describe().startswith(e.name + ".")
    # exclusion notes point at categories or phases that exist
    ids = set(cat.category_ids) | set(cat.phase_ids)
    for e in (*cat.categories, *cat.phases):
        for ref in re.findall(r"\(([a-z_-]+)", e.exclude):
            for part in ref.split(", "):
                assert part in ids, f"{e.id} excludes unknown {part!r}"


@pytest.mark.corpus
def test_default_catalog_matches_the_codebook(corpus):
    cat = load_catalog()
    with open(corpus / "codebook.tsv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert sorted(cat.category_ids) == sorted({r["category"] for r in rows if r["category"] != "-"})
    assert sorted(cat.phase_ids) == sorted({r["phase"] for r in rows})
    for r in rows:
        if r["category"] != "-":
            assert r["code"] in cat[r["category"]].codes, r["code"]
        assert r["code"] in cat[r["phase"]].codes, r["code"]
        assert (r["kind"] == "mitigation") == (r["code"] in cat.extra["mitigation_codes"]), r["code"]


# --- loading ------------------------------------------------------------------------


def test_load_mini_catalog(tmp_path):
    cat = load_catalog(_write(tmp_path, MINI))
    assert cat.tag == "mini@3" and cat.category_ids == ["c1"] and cat.phase_ids == ["p1"]
    c1 = cat["c1"]
    assert c1.keywords == ("alpha", "beta") and c1.codes == ("A", "A-fix")
    assert c1.exclude == ""  # an empty YAML field is not the text "None"
    assert "c1" in cat and "zz" not in cat
    with pytest.raises(KeyError):
        cat["zz"]
    assert c1.describe() == "Cat one. The first category. what counts Keywords: alpha, beta."
    assert cat.extra["source"] == "a citation"


def test_fingerprint_follows_definitions_not_formatting(tmp_path):
    a = load_catalog(_write(tmp_path, MINI, "a.yaml"))
    b = load_catalog(_write(tmp_path, "# a comment\n" + MINI.replace("[alpha, beta]", "\n  - alpha\n  - beta"), "b.yaml"))
    c = load_catalog(_write(tmp_path, MINI.replace("The first category.", "Changed."), "c.yaml"))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.parametrize("text, expected", [
    ("version: [\n", "expected valid YAML"),
    ("- a\n- b\n", "expected a mapping with version, phases and categories, found list"),
    (MINI.replace("version: 3", "version: 0"), 'expected an integer "version" >= 1, found 0'),
    (MINI.replace("version: 3", "version: two"), "expected an integer \"version\" >= 1, found 'two'"),
    (MINI.replace("version: 3\n", ""), 'expected an integer "version" >= 1, found None'),
    (MINI.replace("  definition: The first category.\n", ""), 'expected a non-empty string "definition" in categories[0]'),
    (MINI.replace("name: Cat one", "name: ''"), 'expected a non-empty string "name" in categories[0]'),
    (MINI.replace("  codes: [A, A-fix]", "  colour: red"), "expected only the fields"),
    (MINI.replace("keywords: [alpha, beta]", "keywords: alpha"), 'expected a list for "keywords" in categories[0]'),
    (MINI.replace("keywords: [alpha, beta]", "examples: It broke."), 'expected a list for "examples" in categories[0]'),
    (MINI.replace("phases: [p1]", "phases: [p9]"), "expected phases of 'c1' among ['p1'], found ['p9']"),
    (MINI.replace("id: c1", "id: p1"), "expected unique entry ids, found 'p1' twice"),
    (MINI.split("categories:")[0], "expected at least one category and one phase, found 0 categories, 1 phases"),
    (MINI.replace("- id: p1\n  name: Phase one", "- just a string\n- id: p1\n  name: Phase one"),
     "expected a mapping for phases[0], found str"),
])
def test_load_errors(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_catalog(path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and expected in msg and "\n" not in msg, msg


def test_yaml_error_names_the_line(tmp_path):
    path = _write(tmp_path, MINI + "  bad: [\n")
    with pytest.raises(InputError) as e:
        load_catalog(path)
    assert e.value.line is not None and str(e.value).startswith(f"{path}:{e.value.line}: expected valid YAML")


def test_missing_catalog(tmp_path):
    with pytest.raises(InputError, match="expected a catalog YAML file, found no such file"):
        load_catalog(tmp_path / "nope.yaml")


# --- saving and adding ------------------------------------------------------------------


def test_save_round_trip_keeps_extra_fields(tmp_path):
    cat = load_catalog(_write(tmp_path, MINI))
    save_catalog(cat, tmp_path / "copy.yaml")
    again = load_catalog(tmp_path / "copy.yaml")
    assert again.fingerprint() == cat.fingerprint()
    assert again.extra == cat.extra and again.categories == cat.categories


def test_add_category_bumps_version(tmp_path):
    path = _write(tmp_path, MINI)
    new = add_category(path, Entry("c2", "Cat two", "A new one.", phases=("p1",), added_from="discover"))
    assert new.version == 4 and new.category_ids == ["c1", "c2"]
    assert load_catalog(path)["c2"].added_from == "discover"
    assert yaml.safe_load(path.read_text())["version"] == 4


def test_add_category_rejects_duplicate_id_and_leaves_file(tmp_path):
    path = _write(tmp_path, MINI)
    with pytest.raises(InputError, match="expected a new entry id, found 'c1' already in the catalog"):
        add_category(path, Entry("c1", "Again", "dup"))
    assert path.read_text() == MINI


def test_add_category_is_atomic(tmp_path, monkeypatch):
    path = _write(tmp_path, MINI)

    def boom(*a, **k):
        raise OSError("disk full")

    import ruamel.yaml

    monkeypatch.setattr(ruamel.yaml.YAML, "dump", boom)
    with pytest.raises(OSError):
        add_category(path, Entry("c2", "Cat two", "A new one."))
    assert path.read_text() == MINI
    # only the writer lock (hidden, empty) stays beside it; no temp file with content
    assert sorted(os.listdir(tmp_path)) == [".catalog.yaml.lock", "catalog.yaml"]


def test_add_category_with_unknown_phase_is_rejected(tmp_path):
    path = _write(tmp_path, MINI)
    with pytest.raises(InputError, match="expected phases of 'c2'"):
        add_category(path, Entry("c2", "Cat two", "A new one.", phases=("nope",)))
    assert path.read_text() == MINI  # nothing written: the catalog still loads


def test_add_category_rejects_empty_definition(tmp_path):
    path = _write(tmp_path, MINI)
    with pytest.raises(InputError, match="non-empty string \"definition\" in the new entry 'c2'"):
        add_category(path, Entry("c2", "Cat two", " "))
    assert path.read_text() == MINI


# --- hostile and hand-edited YAML (issue 12) ---------------------------------------------


def test_duplicate_keys_are_an_error_naming_the_line(tmp_path):
    path = _write(tmp_path, MINI.replace("version: 3\n", "version: 3\nversion: 4\n"))
    with pytest.raises(InputError, match=r"catalog.yaml:3: expected each key once in a mapping, found 'version' "
                                         r"again \(also line 2\)"):
        load_catalog(path)
    dup_in_entry = MINI.replace("  name: Cat one\n", "  name: Cat one\n  name: Cat uno\n")
    with pytest.raises(InputError, match="'name' again"):
        load_catalog(_write(tmp_path, dup_in_entry, "b.yaml"))


def test_alias_bomb_is_refused_fast(tmp_path):
    import time

    levels = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    for i in range(1, 12):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    bomb = MINI.replace("source: a citation\n", "source: a citation\n" + "\n".join(levels) + "\n")
    path = _write(tmp_path, bomb)
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"catalog.yaml:5: expected a catalog without YAML aliases \(\*name\), "
                                         r"found an alias"):
        load_catalog(path)
    assert time.perf_counter() - t0 < 2


def test_catalog_special_file_is_refused(tmp_path):
    fifo = tmp_path / "catalog.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="expected a catalog YAML file, found a FIFO"):
        load_catalog(fifo)


def test_add_category_keeps_comments_and_layout(tmp_path):
    text = "# my notes on the catalog\n" + MINI.replace("  include: what counts\n",
                                                         "  include: what counts  # tuned by hand\n")
    path = _write(tmp_path, text)
    new = add_category(path, Entry("c2", "Cat two", "A new one.", phases=("p1",), keywords=("k",)))
    out = path.read_text()
    assert out.startswith("# my notes on the catalog\n")
    assert "include: what counts  # tuned by hand" in out
    assert "mitigation_codes: [A-fix]" in out  # flow style kept
    assert out.index("id: c1") < out.index("id: c2")
    assert new.version == 4 and new.category_ids == ["c1", "c2"]
    assert text.replace("version: 3", "version: 4") == out[:len(text)]  # everything before is byte for byte


@pytest.mark.parametrize("extra, found", [
    ("1: x\n", "found a number key 1"),
    ("~: x\n", r"found a null key \(~\)"),
    ("yes: x\n", "found a boolean key True"),
    ("? [a, b]\n: x\n", "found a list key"),
    ("blob: !!binary aGVsbG8=\n", "found a binary value"),
    ("things: !!set {a, b}\n", "found a set value"),
])
def test_odd_yaml_keys_and_values_are_one_line(tmp_path, extra, found):
    path = _write(tmp_path, MINI + extra)
    with pytest.raises(InputError, match=rf"catalog.yaml:\d+: expected .*{found}") as e:
        load_catalog(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, found", [
    ("version: 1\nphases: 5\ncategories: []\n", 'expected a list of entries for "phases", found int 5'),
    (MINI.replace("  keywords: [alpha, beta]", "  keywords: {alpha: 1}"), 'expected a list for "keywords"'),
    (MINI.replace("  keywords: [alpha, beta]", "  dimension: [x]"), 'expected text for "dimension" in categories'),
])
def test_wrong_shapes_in_a_catalog_are_one_line(tmp_path, text, found):
    with pytest.raises(InputError, match=found):
        load_catalog(_write(tmp_path, text))


def test_dates_stay_the_text_written(tmp_path):
    assert load_catalog(_write(tmp_path, MINI + "updated: 2024-01-31\n")).extra["updated"] == "2024-01-31"


@pytest.mark.parametrize("extra, found", [
    ("big: " + "9" * 5000 + "\n", "expected numbers of at most 30 digits, found one of 5000"),
    ("big: 0x" + "f" * 5000 + "\n", "expected numbers of at most 30 digits"),
    ("odd: .nan\n", "expected finite numbers, found .nan"),
    ("odd: -.inf\n", "expected finite numbers, found -.inf"),
    ('odd: "\\ud800"\n', r"expected text without lone surrogates, found \\ud800"),
])
def test_any_yaml_value_is_one_line_never_an_internal_error(tmp_path, extra, found):
    with pytest.raises(InputError, match=rf"catalog.yaml:\d+: {found}"):
        load_catalog(_write(tmp_path, MINI + extra))


def test_base_60_numbers_stay_the_text_written(tmp_path):
    assert load_catalog(_write(tmp_path, MINI + "duration: 1:30\n")).extra["duration"] == "1:30"

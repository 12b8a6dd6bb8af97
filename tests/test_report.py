"""Report: counts recomputed from predictions.jsonl, escaping, figures, CSV, headless Chromium."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from html.parser import HTMLParser

import pytest

from extractor import report
from extractor.jsonl import read_jsonl, write_jsonl
from extractor.types import Prediction

from extract_fixtures import KeywordClassifier, make_turns, write_catalog


def _pred(iv, turn, cats, phases=(), mit=False, text="some words", scores=None):
    return Prediction(iv, turn, f"{iv}-{turn}", tuple(cats), tuple(phases), mit, scores or {c: 0.9 for c in cats},
                      {}, text, "", "m")


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.ids, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-phase" in a:
            self.cells.append(a)
        if tag == "section" and "id" in a:
            self.ids.append(a["id"])

    def handle_data(self, data):
        self.text.append(data)


def test_summarize_counts_turns_and_interviews_per_cell(tmp_path):
    cat = write_catalog(tmp_path)
    preds = [_pred("I1", 1, ["drift"], ["model_maintenance"]), _pred("I1", 3, ["drift"], ["model_maintenance"]),
             _pred("I2", 1, ["drift", "noisy_labels"], ["model_maintenance", "data_collection"]),
             _pred("I2", 2, ["explainability"]), _pred("I2", 3, [], [], mit=True)]
    s = report.summarize(preds, cat)
    m = {r["category"]: r for r in s["matrix"]}
    assert m["drift"]["cells"]["model_maintenance"] == {"turns": 3, "interviews": 2}
    assert m["drift"]["cells"]["data_collection"] == {"turns": 1, "interviews": 1}
    assert m["explainability"]["cells"][report.NO_PHASE] == {"turns": 1, "interviews": 1}
    assert (m["drift"]["turns"], m["drift"]["interviews"]) == (3, 2)
    assert s["totals"]["issue_turns"] == 4 and s["totals"]["mitigation_turns"] == 1
    assert [r["interview"] for r in s["interviews"]] == ["I1", "I2"]
    assert s["interviews"][1]["top_categories"][0] in ("drift", "explainability", "noisy_labels")


def test_interviews_sort_naturally(tmp_path):
    cat = write_catalog(tmp_path)
    s = report.summarize([_pred("Interview 10", 0, []), _pred("Interview 9", 0, [])], cat)
    assert [r["interview"] for r in s["interviews"]] == ["Interview 9", "Interview 10"]


def test_report_counts_agree_with_predictions_jsonl(tmp_path):
    cat = write_catalog(tmp_path)
    turns = make_turns()
    preds = KeywordClassifier(cat).predict(turns)
    write_jsonl(tmp_path / "predictions.jsonl", preds)
    report.write_report(tmp_path / "out", preds, cat, turns=turns)
    # Recompute independently from the JSONL file.
    want_turns, want_ivs = defaultdict(int), defaultdict(set)
    rows = list(read_jsonl(tmp_path / "predictions.jsonl"))
    for r in rows:
        for c in r["categories"]:
            for ph in r["phases"] or [report.NO_PHASE]:
                want_turns[c, ph] += 1
                want_ivs[c, ph].add(r["interview"])
    parser = _Cells()
    parser.feed((tmp_path / "out" / "report.html").read_text(encoding="utf-8"))
    got = {(c["data-category"], c["data-phase"]): (int(c["data-turns"]), int(c["data-interviews"]))
           for c in parser.cells}
    assert len(got) == len(cat.category_ids) * (len(cat.phase_ids) + 1)
    for key, (n, k) in got.items():
        assert n == want_turns.get(key, 0) and k == len(want_ivs.get(key, ())), key
    assert sum(n for n, _ in got.values()) > 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["totals"]["interviewee_turns"] == len(rows)
    assert summary["totals"]["category_labels"] == sum(len(r["categories"]) for r in rows)
    assert summary["totals"]["mitigation_turns"] == sum(r["mitigation"] for r in rows)
    with open(tmp_path / "out" / "coded_segments.csv", newline="", encoding="utf-8") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert len(csv_rows) == summary["totals"]["category_labels"]
    assert {(r["id"], r["category"]) for r in csv_rows} == {(r["id"], c) for r in rows for c in r["categories"]}


def test_html_escapes_text_and_is_self_contained(tmp_path):
    cat = write_catalog(tmp_path)
    evil = '<script>alert("x")</script> & <img src=x>'
    preds = [_pred("I<1>", 0, ["noisy_labels"], text=evil)]
    page = report.render_html(report.summarize(preds, cat, proposals=[{"name": "<b>new</b>", "keywords": ["a&b"]}]))
    assert "<script>" not in page and "<img src=x>" not in page and "<b>new</b>" not in page
    assert "&lt;script&gt;" in page and "Labels are wrong &lt;sometimes&gt;." in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


def test_figures_are_well_formed_svg(tmp_path):
    cat = write_catalog(tmp_path)
    s = report.summarize([_pred("I&1", 0, ["drift"], ["model_maintenance"])], cat)
    for svg in (report.heatmap_svg(s), report.bar_svg(s)):
        root = ET.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.findall(".//{http://www.w3.org/2000/svg}rect")


def test_markdown_has_every_section(tmp_path):
    cat = write_catalog(tmp_path)
    md = report.render_markdown(report.summarize([_pred("I1", 0, ["drift"], ["model_maintenance"], mit=True)], cat,
                                                 privacy=[{"file": "f.txt", "line": 2, "kind": "email", "text": "a@b.co"}]))
    for title in ("## Summary", "## Privacy check", "## Category x phase matrix", "## Interviews",
                  "## Categories and evidence", "## Mitigation mentions", "## Proposed new categories"):
        assert title in md
    assert "`f.txt:2` email" in md


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    cat = write_catalog(tmp_path)
    turns = make_turns()
    preds = KeywordClassifier(cat).predict(turns)
    privacy = [{"file": "Interview A.txt", "line": 3, "kind": "email", "text": "x@y.org"}]
    paths = report.write_report(tmp_path / "out", preds, cat, turns=turns, privacy=privacy,
                                proposals=[{"name": "Vendor lock-in", "size": 6, "keywords": ["vendor"]}])
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", paths["html"].resolve().as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    parser = _Cells()
    parser.feed(dom)
    assert parser.ids == [sid for sid, _ in report.SECTIONS]
    text = " ".join(parser.text)
    for _, title in report.SECTIONS:
        assert title in text
    assert "Vendor lock-in" in text and "x@y.org" in text
    assert "<svg" in dom and 'id="figure-heatmap"' in dom and 'id="figure-bars"' in dom
    drift = [c for c in parser.cells if c["data-category"] == "drift" and c["data-phase"] == "model_maintenance"]
    assert drift and int(drift[0]["data-turns"]) == 1

"""Report: counts recomputed from predictions.jsonl, escaping, figures, CSV, headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from html.parser import HTMLParser

import pytest
from extract_fixtures import KeywordClassifier, make_turns, write_catalog

from extractor import report
from extractor.jsonl import read_jsonl, write_jsonl
from extractor.types import Prediction, Turn, with_ids


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
    found = {c for r in rows for c in r["categories"]}
    assert len(got) == len(found) * (len(cat.phase_ids) + 1)  # a row per category found, nothing else
    for key, (n, k) in got.items():
        assert n == want_turns.get(key, 0) and k == len(want_ivs.get(key, ())), key
    assert sum(n for n, _ in got.values()) == sum(want_turns.values()) > 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["totals"]["interviewee_turns"] == len(rows)
    assert summary["totals"]["category_labels"] == sum(len(r["categories"]) for r in rows)
    assert summary["totals"]["mitigation_turns"] == sum(r["mitigation"] for r in rows)
    assert "transcripts" not in summary  # the figures only; the text is in turns/predictions.jsonl
    with open(tmp_path / "out" / "coded_segments.csv", newline="", encoding="utf-8") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert len(csv_rows) == summary["totals"]["category_labels"]
    assert {(r["id"], r["category"]) for r in csv_rows} == {(r["id"], c) for r in rows for c in r["categories"]}


# --- the bars of issue 14 on a tiny synthetic extraction -------------------------------

CARD = {"metrics": {"inner_cv_micro_f1_optimistic": {"categories": 0.28, "phases": 0.39, "mitigation": 0.25}}}


def _synthetic(n_interviews=2, n_pairs=6):
    """Invented interviews: interviewer question + interviewee answer pairs, fake predictions
    whose codes, scores and evidence vary per turn (two codes on some turns)."""
    cats = ("drift", "noisy_labels", "explainability")
    turns, preds = [], []
    for i in range(1, n_interviews + 1):
        iv = f"Interview {i}"
        rows = []
        for k in range(n_pairs):
            rows.append(Turn(iv, 2 * k, "interviewer", f"Question {k} of interview {i}: what went wrong in case {k}?",
                             speaker_raw="Interviewer"))
            rows.append(Turn(iv, 2 * k + 1, "interviewee",
                             f"Answer {k} from {iv}. The data changed a lot in case {k}, which we noticed late. "
                             f"Then we retrained the model every week for case {k}.",
                             question=f"Question {k} of interview {i}: what went wrong in case {k}?",
                             speaker_raw="Interviewee"))
        rows = list(with_ids(rows))
        turns += rows
        for t in rows:
            if t.speaker != "interviewee":
                continue
            k = t.turn // 2
            codes = [cats[k % 3]] + ([cats[(k + 1) % 3]] if k % 2 == 0 else []) if k % 4 != 3 else []
            scores = {c: (0.3 + 0.1 * k if c in codes else 0.05) for c in cats}
            scores["mitigation"] = 0.8 if k == 1 else 0.1
            evidence = {c: t.text.split(". ")[1] + "." for c in codes}
            preds.append(Prediction(t.interview, t.turn, t.id, tuple(codes), ("model_maintenance",) if codes else (),
                                    k == 1, scores, evidence, t.text, t.question, "fake"))
    return turns, preds


class _Text(HTMLParser):
    """Visible text of a page (scripts and styles left out), and the quotes' <details>."""

    def __init__(self):
        super().__init__()
        self.skip, self.chunks, self.details = 0, [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        if tag == "details" and ("class", "quote") in attrs:
            self.details += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.chunks.append(data)

    @property
    def text(self):
        return " ".join(" ".join(self.chunks).split())


def test_report_meets_the_bars_on_a_synthetic_extraction(tmp_path):
    cat = write_catalog(tmp_path)
    turns, preds = _synthetic()
    paths = report.write_report(tmp_path / "out", preds, cat, turns=turns,
                                manifest={"model": {"name": "fake-model", "card": CARD}})
    page = paths["html"].read_text(encoding="utf-8")
    p = _Text()
    p.feed(page)
    visible = p.text
    coded = [x for x in preds if x.categories]
    interviewee = [t for t in turns if t.is_interviewee]
    shown = lambda text: " ".join(text.split()) in visible  # noqa: E731
    assert sum(shown(x.text) for x in coded) / len(coded) >= 0.9
    assert sum(shown(t.text) for t in interviewee) / len(interviewee) >= 0.9
    assert all(shown(t.text) for t in turns)  # the transcripts: every turn, interviewer's too
    # the model's F1 beside the human agreement, read from the card
    assert 'data-model-f1="0.28"' in page and 'data-human-f1="0.43"' in page
    assert "Every code in this report was assigned by a machine-learning model" in visible
    # a co-occurrence matrix with the right counts
    both = sum(1 for x in preds if {"drift", "noisy_labels"} <= set(x.categories))
    assert both and f'data-pair="drift|noisy_labels" data-turns="{both}"' in page
    assert f'data-pair="noisy_labels|drift" data-turns="{both}"' in page
    # every quote opens to its turn and the question it answered
    assert p.details == sum(len(x.categories) for x in preds)
    first = max(coded, key=lambda x: x.scores[x.categories[0]])
    assert f"<b>Question:</b> {first.question}" in page
    assert "<mark" in page and first.evidence[first.categories[0]] in page
    # plain words, not "1 turns in 1 interviews"
    assert "1 turns" not in visible and "1 interviews" not in visible
    assert re.search(r"\b1 turn in 1 interview\b|\b\d+ turns in 2 interviews\b", visible)


def test_privacy_warning_appears_once(tmp_path):
    cat = write_catalog(tmp_path)
    turns, preds = _synthetic(1, 2)
    page = report.render_html(report.summarize(preds, cat, turns=turns, privacy=[
        {"file": "a.txt", "line": 1, "kind": "email", "text": "x@y.org"},
        {"file": "a.txt", "line": 2, "kind": "phone", "text": "+1 555 0100"}]))
    p = _Text()
    p.feed(page)
    assert p.text.count("Warning:") == 1 and "2 likely pieces of unredacted personal data" in p.text


def test_model_quality_prefers_the_cards_held_out_evaluation():
    held_out = {"evaluation": {"method": "5-fold CV on held-out interviews",
                               "model": {"categories": {"micro_f1": 0.22}, "phases": 0.37},
                               "human": {"categories": 0.41, "phases": 0.5}}, **CARD}
    q = report.model_quality({"name": "m", "card": held_out})
    assert q["model_f1"] == {"categories": 0.22, "phases": 0.37} and q["human_f1"] == {"categories": 0.41, "phases": 0.5}
    assert q["model_source"] == "5-fold CV on held-out interviews"
    q = report.model_quality({"name": "m", "card": CARD})
    assert q["model_f1"] == {"categories": 0.28, "phases": 0.39} and "optimistic" in q["model_source"]
    assert q["human_f1"]["categories"] == report.HUMAN_AGREEMENT_FALLBACK["categories"]
    q = report.model_quality(None)
    assert q["model_f1"] == {}
    page = report.render_html(report.summarize([_pred("I1", 0, ["drift"])], _catalog()))
    assert "records no measured F1" in page and 'data-model-f1="-"' in page


def _catalog():
    import tempfile
    from pathlib import Path

    return write_catalog(Path(tempfile.mkdtemp()))


EVIL = '<script>alert("x")</script> & <img src=x onerror=alert(1)> [click](javascript:alert(1)) *bold* `code`'


def test_html_escapes_text_speakers_and_file_names(tmp_path):
    cat = write_catalog(tmp_path)
    t = list(with_ids([Turn("I<1>", 0, "interviewer", EVIL, speaker_raw="<b>Boss</b>"),
                       Turn("I<1>", 1, "interviewee", EVIL, question=EVIL, speaker_raw="<i>Me</i>")]))
    preds = [Prediction("I<1>", 1, t[1].id, ("noisy_labels",), (), True, {"noisy_labels": 0.9, "mitigation": 0.8},
                        {"noisy_labels": EVIL}, EVIL, EVIL, "m")]
    page = report.render_html(report.summarize(
        preds, cat, turns=t, privacy=[{"file": "<svg onload=alert(1)>.txt", "line": 1, "kind": "email", "text": EVIL}],
        proposals=[{"name": "<b>new</b>", "keywords": ["a&b"], "quotes": [{"interview": "I<1>", "turn": 1, "text": EVIL}]}]))
    page_no_script = page[: page.rindex("<script>")]
    for raw in ("<script>", "<img", "<b>Boss", "<i>Me", "<svg onload", "<b>new</b>"):
        assert raw not in page_no_script, raw
    assert "&lt;script&gt;" in page and "Labels are wrong &lt;sometimes&gt;." in page
    assert "http://" not in page and "https://" not in page and "src=" not in page_no_script.replace("src=x", "")


def test_markdown_lets_no_html_or_markup_through(tmp_path):
    cat = write_catalog(tmp_path)
    t = list(with_ids([Turn("I<1>", 0, "interviewee", EVIL, speaker_raw="<b>Me</b>")]))
    preds = [Prediction("I<1>", 0, t[0].id, ("noisy_labels",), (), True, {"noisy_labels": 0.9, "mitigation": 0.9},
                        {"noisy_labels": EVIL}, EVIL, EVIL, "m")]
    md = report.render_markdown(report.summarize(
        preds, cat, turns=t, privacy=[{"file": "<x>`.txt", "line": 1, "kind": "e<b>", "text": EVIL}],
        proposals=[{"name": "<b>new</b> [x](y)", "keywords": ["a<b"]}]))
    assert "<" not in md and ">" not in md.replace("\n> ", "\n").replace("\n>\n", "\n").lstrip(">")
    assert not re.search(r"(?<!\\)\]\(", md) and "[click]" not in md and "*bold*" not in md
    assert "&lt;script&gt;" in md and "\\[click\\](javascript:alert(1))" in md
    # rendered by a CommonMark renderer that lets raw HTML through, input still makes no markup
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark", {"html": True}).render(md)
    for tag in ("<script", "<img", "<a ", "<svg", "<b>", "<i>", "<em>bold", "<code>code"):
        assert tag not in rendered, tag
    assert "&lt;script&gt;" in rendered and "[click](javascript:alert(1))" in rendered


def test_markdown_follows_the_html_order(tmp_path):
    cat = write_catalog(tmp_path)
    turns, preds = _synthetic(1, 4)
    s = report.summarize(preds, cat, turns=turns,
                         privacy=[{"file": "f.txt", "line": 2, "kind": "email", "text": "a@b.co"}])
    md = report.render_markdown(s)
    titles = [t for _, t in report.SECTIONS]
    pos = [md.index(f"## {t}\n") for t in titles]
    assert pos == sorted(pos)
    assert "- f.txt, line 2, email: a@b.co" in md
    assert all(" ".join(t.text.split()).split(".")[0] in md for t in turns)


def test_csv_neutralises_spreadsheet_formulas(tmp_path):
    cat = write_catalog(tmp_path)
    cells = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain"]
    preds = [Prediction(f"{c}iv", i, f"{c}id", ("drift",), (), False, {"drift": 0.5}, {"drift": c}, c, "", "m")
             for i, c in enumerate(cells)]
    text = report.coded_segments_csv(preds, cat)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(cells)
    for row, c in zip(rows, cells):
        for key in ("interview", "id", "evidence", "text"):
            if c == "plain":
                assert not row[key].startswith("'")
            else:
                assert row[key].startswith("'") and row[key][1:].startswith(c[0]), (key, row[key])
    assert report.csv_cell(-1.5) == -1.5 and report.csv_cell("'=x") == "'=x"


def test_figures_are_well_formed_svg(tmp_path):
    cat = write_catalog(tmp_path)
    s = report.summarize([_pred("I&1", 0, ["drift"], ["model_maintenance"])], cat)
    for svg in (report.heatmap_svg(s), report.bar_svg(s)):
        root = ET.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.findall(".//{http://www.w3.org/2000/svg}rect")


def test_categories_are_grouped_by_dimension(tmp_path):
    cat = write_catalog(tmp_path)
    s = report.summarize([_pred("I1", 0, ["drift"]), _pred("I1", 1, ["explainability"])], cat)
    groups = {d["name"]: d["categories"] for d in s["dimensions"]}
    assert sum(len(v) for v in groups.values()) == len(cat.category_ids)
    page = report.render_html(s)
    assert page.index('id="cat-drift"') < page.index('id="interviews"')
    assert "Not found: " in page and ">Noisy labels<" in page


# --- in a real browser ---------------------------------------------------------------


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _dump_dom(url, profile, *extra):
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *extra, "--dump-dom", url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if "<html" not in res.stdout:
        pytest.skip(f"headless Chromium could not start (exit {res.returncode}): {res.stderr.strip()[-300:]}")
    return res.stdout


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    cat = write_catalog(tmp_path)
    turns = make_turns()
    preds = KeywordClassifier(cat).predict(turns)
    privacy = [{"file": "Interview A.txt", "line": 3, "kind": "email", "text": "x@y.org"}]
    paths = report.write_report(tmp_path / "out", preds, cat, turns=turns, privacy=privacy,
                                proposals=[{"name": "Vendor lock-in", "size": 6, "keywords": ["vendor"]}])
    url = paths["html"].resolve().as_uri()
    for extra in ((),):
        dom = _dump_dom(url, tmp_path / "profile", *extra)
        parser = _Cells()
        parser.feed(dom)
        assert [i for i in parser.ids if i in dict(report.SECTIONS)] == [sid for sid, _ in report.SECTIONS]
        text = " ".join(parser.text)
        for _, title in report.SECTIONS:
            assert title in text
        assert "Vendor lock-in" in text and "x@y.org" in text
        assert all(" ".join(t.text.split()) in " ".join(text.split()) for t in turns)
        drift = [c for c in parser.cells if c["data-category"] == "drift" and c["data-phase"] == "model_maintenance"]
        assert drift and int(drift[0]["data-turns"]) == 1
        assert '<div id="filters">' in dom  # the script ran and showed the filters


def _selenium_driver(tmp_path, scripts=True):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install .[dev])")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'sel-profile'}"):
        opts.add_argument(arg)
    opts.binary_location = _chromium()
    if not scripts:
        opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        pytest.skip("chromedriver not installed (apt-get install chromium-driver)")
    try:
        return webdriver.Chrome(service=Service(driver_path), options=opts)
    except Exception as e:  # noqa: BLE001 - any failure to start the browser is a skip, not a test failure
        pytest.skip(f"headless Chromium could not start: {str(e).splitlines()[0]}")


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_report_filters_and_quotes_work_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By

    cat = write_catalog(tmp_path)
    turns, preds = _synthetic()
    paths = report.write_report(tmp_path / "out", preds, cat, turns=turns)
    d = _selenium_driver(tmp_path)
    try:
        d.get(paths["html"].resolve().as_uri())
        assert d.find_element(By.ID, "filters").is_displayed()
        quotes = d.find_elements(By.CSS_SELECTOR, "details.quote")
        assert quotes and not quotes[0].find_element(By.CSS_SELECTOR, ".ctx").is_displayed()
        quotes[0].find_element(By.TAG_NAME, "summary").click()
        ctx = quotes[0].find_element(By.CSS_SELECTOR, ".ctx")
        assert ctx.is_displayed() and "Question:" in ctx.text
        visible = lambda: [q for q in d.find_elements(By.CSS_SELECTOR, "details.quote")  # noqa: E731
                           if "off" not in q.get_attribute("class")]
        n_all = len(visible())
        d.execute_script("var c=document.getElementById('f-conf');c.value='0.6';"
                         "c.dispatchEvent(new Event('input'))")
        high = visible()
        assert 0 < len(high) < n_all
        assert all(float(q.get_attribute("data-score")) >= 0.6 for q in high)
        d.execute_script("var c=document.getElementById('f-conf');c.value='0';c.dispatchEvent(new Event('input'));"
                         "var s=document.getElementById('f-iv');s.value='Interview 2';"
                         "s.dispatchEvent(new Event('input'))")
        assert {q.get_attribute("data-interview") for q in visible()} == {"Interview 2"}
        shown = [s for s in d.find_elements(By.CSS_SELECTOR, "section.transcript") if s.is_displayed()]
        assert [s.get_attribute("data-interview") for s in shown] == ["Interview 2"]
    finally:
        d.quit()


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_report_reads_with_scripts_off(tmp_path):
    from selenium.webdriver.common.by import By

    cat = write_catalog(tmp_path)
    turns, preds = _synthetic(2, 3)
    paths = report.write_report(tmp_path / "out", preds, cat, turns=turns)
    d = _selenium_driver(tmp_path, scripts=False)
    try:
        d.get(paths["html"].resolve().as_uri())
        assert not d.find_element(By.ID, "filters").is_displayed()  # no script, no filters to mislead
        body = d.find_element(By.TAG_NAME, "body").text
        assert "What these codes are" in body and "Codes that occur together" in body
        assert all(" ".join(t.text.split()) in " ".join(body.split()) for t in turns)
        q = d.find_element(By.CSS_SELECTOR, "details.quote")
        q.find_element(By.TAG_NAME, "summary").click()  # <details> opens without any script
        assert "Question:" in q.find_element(By.CSS_SELECTOR, ".ctx").text
    finally:
        d.quit()


def test_proposals_read_in_plain_words_without_repeated_quotes(tmp_path):
    cat = write_catalog(tmp_path)
    turns, preds = _synthetic(2, 6)
    q = [{"interview": t.interview, "turn": t.turn, "id": t.id, "text": t.text} for t in turns if t.is_interviewee]
    theme = {"id": "p-1", "name": "Vendor lock-in", "level": "theme", "size": 12, "n_interviews": 2,
             "keywords": ["vendor", "contract"], "quotes": q[:5], "cohesion": 0.5,
             "nearest": [{"id": "drift", "name": "Drift", "similarity": 0.62}]}
    child = {"id": "p-2", "name": "Contract terms", "level": "cluster", "parent": "p-1", "size": 6, "n_interviews": 1,
             "keywords": ["contract"], "quotes": q[:2] + q[5:8], "nearest": [{"id": "x", "name": "X", "similarity": 0.1}]}
    intro = {"id": "p-3", "name": "Roles", "kind": "introductions", "size": 5, "n_interviews": 2, "quotes": q[8:9]}
    page = report.render_html(report.summarize(preds, cat, turns=turns, proposals=[theme, child, intro]))
    sec = page[page.index('<section id="proposals"'):]
    p = _Text()
    p.feed(sec)
    text = p.text
    assert "Heard in 12 turns from 2 interviews" in text and "Heard in 6 turns from 1 interview." in text
    assert "close to the existing code \u201cDrift\u201d: maybe a variant of it" in text
    assert "unlike the existing code \u201cX\u201d, so possibly a new code" in text
    assert "broad theme" in text and "part of \u201cVendor lock-in\u201d" in text
    for jargon in ("cohesion", "p-1", "level", "0.62"):
        assert jargon not in text, jargon
    # each quote once: the child shows its own turns, not the theme's again
    shown = re.findall(r"(Interview \d), turn (\d+)</span>", sec)
    assert len(shown) == len(set(shown)) == 3 + 3 + 1
    # introductions are set aside behind a toggle, after the others
    assert sec.index("Set aside as small talk or introductions (1)") < sec.index(">Roles<")


# --- people's codes stay people's (issue 18) -------------------------------------------------------


def _reviewed_run(tmp_path):
    """Interview A and B predicted by keywords; the drift turn of A corrected by Ana, and
    one model code on a catalog entry the model was never trained on."""
    from dataclasses import replace

    cat = write_catalog(tmp_path)
    turns = make_turns()
    preds = KeywordClassifier(cat).predict(turns)
    i = next(k for k, p in enumerate(preds) if "drift" in p.categories)
    preds[i] = replace(preds[i], categories=("drift", "explainability"), label_source="human", reviewer="Ana",
                       reviewed_at="2026-12-03T10:00:00Z")
    j = next(k for k, p in enumerate(preds) if p.categories and k != i)
    preds[j] = replace(preds[j], untrained=preds[j].categories[:1])
    return cat, turns, preds, preds[i], preds[j]


def _reviewed_counts(preds):
    return sum(len(p.categories) for p in preds if p.label_source == "human"), sum(len(p.categories) for p in preds)


def test_html_marks_reviewed_codes_with_who_and_when(tmp_path):
    cat, turns, preds, rev, new = _reviewed_run(tmp_path)
    page = report.render_html(report.summarize(preds, cat, turns=turns))
    n, m = _reviewed_counts(preds)
    assert f"{n} of {m} codes reviewed" in page and n == 2
    assert "Every code in this report was assigned by a machine-learning model" not in page
    assert page.count('class="quote reviewed"') == 2 and "reviewed by Ana, 2026-12-03" in page
    assert 'class="chip reviewed"' in page and ".chip.reviewed{" in page  # its own style
    assert "new entry, not yet trained" in page
    model_only = report.render_html(report.summarize(KeywordClassifier(cat).predict(turns), cat, turns=turns))
    assert "Every code in this report was assigned by a machine-learning model" in model_only
    assert "reviewed" not in model_only and "not yet trained" not in model_only


def test_markdown_says_which_codes_a_person_reviewed(tmp_path):
    cat, turns, preds, rev, new = _reviewed_run(tmp_path)
    md = report.render_markdown(report.summarize(preds, cat, turns=turns))
    n, m = _reviewed_counts(preds)
    assert f"**{n} of {m} codes reviewed** by a person (Ana; 1 turn reviewed)" in md
    assert "Every code in this report was assigned" not in md
    assert f"turn {rev.turn}, reviewed by Ana, 2026-12-03" in md
    assert "new entry, not yet trained" in md


def test_summary_json_records_reviewed_codes(tmp_path):
    cat, turns, preds, rev, new = _reviewed_run(tmp_path)
    report.write_report(tmp_path / "out", preds, cat, turns=turns)
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    n, m = _reviewed_counts(preds)
    assert s["reviewed"] == {"turns": 1, "codes": n, "of_codes": m, "reviewers": ["Ana"]}
    evs = [ev for c in s["categories"] for ev in c["evidence"] if ev["id"] == rev.id]
    assert len(evs) == 2 and all(ev["reviewed"] == {"by": "Ana", "at": "2026-12-03T10:00:00Z"} for ev in evs)
    assert s["untrained"] == list(new.untrained)
    report.write_report(tmp_path / "plain", KeywordClassifier(cat).predict(turns), cat, turns=turns)
    plain = json.loads((tmp_path / "plain" / "summary.json").read_text())
    assert "reviewed" not in plain and "untrained" not in plain
    assert not any("reviewed" in ev for c in plain["categories"] for ev in c["evidence"])


def test_csv_source_column_names_the_reviewer(tmp_path):
    cat, turns, preds, rev, new = _reviewed_run(tmp_path)
    rows = list(csv.DictReader(io.StringIO(report.coded_segments_csv(preds, cat, turns), newline="")))
    assert {r["category"]: r["source"] for r in rows if r["id"] == rev.id} == {"drift": "Ana", "explainability": "Ana"}
    assert {r["source"] for r in rows if r["id"] != rev.id} == {"model"}
    assert list(rows[0])[-1] == "source"


def test_a_model_never_reports_another_models_figures():
    evaluation = {"method": "held-out CV of the packaged model", "model": {"categories": 0.26, "phases": 0.33}}
    packaged = {"data_sha256": "aaa", "evaluation": evaluation, **CARD}
    retrained = {**packaged, "data_sha256": "bbb", "warm_start_from": "aaa"}  # an older card that carried it over
    assert report.model_quality({"card": packaged})["model_f1"] == {"categories": 0.26, "phases": 0.33}
    q = report.model_quality({"card": retrained})
    assert q["model_f1"] == {"categories": 0.28, "phases": 0.39} and "optimistic" in q["model_source"]
    q = report.model_quality({"card": {k: v for k, v in retrained.items() if k != "metrics"}})
    assert q["model_f1"] == {} and q["model_source"] == ""
    bound = {**retrained, "evaluation": {**evaluation, "data_sha256": "bbb", "model": {"categories": 0.3}}}
    assert report.model_quality({"card": bound})["model_f1"] == {"categories": 0.3}


def test_a_transcript_script_leaves_the_reports_script_the_only_one(tmp_path):
    class Scripts(HTMLParser):
        def __init__(self):
            super().__init__()
            self.n = 0

        def handle_starttag(self, tag, attrs):
            self.n += tag == "script"

    cat = write_catalog(tmp_path)
    evil = "</script><script>alert(1)</script> drift <SCRIPT src=x></SCRIPT>"
    t = list(with_ids([Turn("<script>I</script>", 0, "interviewer", evil, speaker_raw="<script>"),
                       Turn("<script>I</script>", 1, "interviewee", evil, question=evil, speaker_raw="</script>")]))
    preds = [Prediction(t[1].interview, 1, t[1].id, ("drift",), ("model_maintenance",), True,
                        {"drift": 0.9, "mitigation": 0.8}, {"drift": evil}, evil, evil, "m")]
    page = report.render_html(report.summarize(
        preds, cat, turns=t, privacy=[{"file": evil, "line": 1, "kind": evil, "text": evil}],
        proposals=[{"id": "p", "name": evil, "keywords": [evil], "definition": evil,
                    "quotes": [{"id": t[1].id, "interview": evil, "turn": 1, "text": evil}]}]))
    p = Scripts()
    p.feed(page)
    assert p.n == 1 and page.lower().count("<script") == 1


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_no_confidence_filter_hides_a_reviewed_code_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By

    cat, turns, preds, rev, new = _reviewed_run(tmp_path)
    paths = report.write_report(tmp_path / "out", preds, cat, turns=turns)
    d = _selenium_driver(tmp_path)
    try:
        d.get(paths["html"].resolve().as_uri())
        d.execute_script("var c=document.getElementById('f-conf');c.value='1';c.dispatchEvent(new Event('input'))")
        shown = [q for q in d.find_elements(By.CSS_SELECTOR, "details.quote") if q.is_displayed()]
        assert len(shown) == 2 and all("reviewed by Ana" in q.text for q in shown)
        chips = [c for c in d.find_elements(By.CSS_SELECTOR, ".chip") if c.is_displayed()]
        turn_of = "ancestor::div[contains(concat(' ', @class, ' '), ' turn ')]"
        assert chips and {c.find_element(By.XPATH, turn_of).get_attribute("class") for c in chips} == {
            "turn interviewee coded reviewed"}
        header = d.find_element(By.ID, "about").text
        assert "2 of" in header and "codes reviewed" in header
    finally:
        d.quit()

"""``report.html``: one self-contained page rendered from the summary with the packaged templates.

This module only prepares what each section shows (sorting, counts, colours, the pieces of
a highlighted text); the markup lives in ``extractor/data/report/report.html.j2`` and its
macros, the style in ``report.css`` (``marks.css`` when a code is reviewed or untrained) and
the filters in ``report.js``. Every text from input is escaped by the template environment
(:mod:`extractor.report.templates`), and the page's own script is its only script.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from extractor.report.figures import shade
from extractor.report.summary import NO_PHASE
from extractor.report.templates import render
from extractor.report.words import fmt_f1, plural, proposal_titles, proposal_view, shorten

# Stable section ids: the headless-browser test and users' links rely on them.
SECTIONS = (
    ("about", "What these codes are"),
    ("privacy", "Privacy check"),
    ("summary", "At a glance"),
    ("categories", "Codes by quality dimension"),
    ("interviews", "Codes by interview"),
    ("cooccurrence", "Codes that occur together"),
    ("matrix", "Codes by lifecycle phase"),
    ("transcripts", "Transcripts"),
    ("mitigations", "Mitigations"),
    ("proposals", "Possible new codes"),
)
TOP_QUOTES = 5  # quotes shown per code before "N more quotes"


def anchor(turn_id: str) -> str:
    """The id of a turn's element in the transcripts."""
    return "t-" + re.sub(r"[^A-Za-z0-9_-]", "_", str(turn_id))


def highlight(text: str, marks: Sequence[tuple[str, str]]) -> list[tuple[str, str | None]]:
    """``text`` cut into pieces: ``(piece, None)`` plain, ``(piece, colour)`` where an
    evidence of ``marks`` (``(evidence, colour)``) is found (the first of overlapping ones)."""
    spans: list[tuple[int, int, str]] = []
    for ev, color in marks:
        i = text.find(ev) if ev else -1
        if i >= 0 and all(i >= e or i + len(ev) <= s for s, e, _ in spans):
            spans.append((i, i + len(ev), color))
    out: list[tuple[str, str | None]] = []
    pos = 0
    for s, e, color in sorted(spans):
        out += [(text[pos:s], None), (text[s:e], color)]
        pos = e
    out.append((text[pos:], None))
    return out


def heat(n: int, vmax: int) -> tuple[str, str] | None:
    """A count cell's background and text colour (None: an empty cell stays white)."""
    if not n:
        return None
    frac = n / max(vmax, 1)
    return shade(0.12 + 0.88 * frac), "#fff" if frac > 0.55 else "#1d2330"


def reviewed_words(mark: Mapping[str, str] | None) -> str:
    """``reviewed by Ana, 2026-12-03``: who and when (the date of an ISO time)."""
    if not mark:
        return ""
    when = str(mark.get("at") or "")[:10]
    return f"reviewed by {mark.get('by')}" + (f", {when}" if when else "")


def names_of(ids: Sequence[str], names: Mapping[str, str] | None = None) -> str:
    """``a, b, c``: ids by their names (or as they are), joined for a sentence."""
    return ", ".join((names or {}).get(c, c) for c in ids)


def code_marks(codes: Sequence[Mapping[str, Any]], colors: Mapping[str, str]) -> list[tuple[str, str]]:
    """Each code's evidence with its colour, for :func:`highlight`."""
    return [(c.get("evidence") or "", colors.get(c["id"], "")) for c in codes]


def quote_view(ev: Mapping[str, Any], turns: Mapping[str, Mapping[str, Any]], color: str = "") -> dict[str, Any]:
    """What a quote shows: the short quote, and when opened the question and the whole turn."""
    t = turns.get(ev["id"]) or {}
    text = t.get("text") or ev.get("text") or ev.get("quote", "")
    return {"interview": ev["interview"], "turn": ev["turn"], "quote": ev["quote"], "score": ev.get("score"),
            "question": t.get("question", ""), "who": t.get("who") or "Interviewee",
            "pieces": highlight(text, [(ev.get("evidence") or "", color)]),
            "link": anchor(ev["id"]) if t else "", "reviewed": reviewed_words(ev.get("reviewed")),
            "untrained": bool(ev.get("untrained"))}


def about_view(summary: Mapping[str, Any]) -> dict[str, Any]:
    m = summary["model"]
    mf, hf = m.get("model_f1") or {}, m.get("human_f1") or {}
    rows = [(label, fmt_f1(mf.get(g)), fmt_f1(hf.get(g)))
            for g, label in (("categories", "Issue categories"), ("phases", "Lifecycle phases"))]
    rev = summary.get("reviewed")
    return {"m": m, "tot": summary["totals"], "rows": rows, "when": summary.get("manifest", {}).get("created", ""),
            "reviewed": dict(rev, names=names_of(rev["reviewers"])) if rev else None}


def glance_view(summary: Mapping[str, Any]) -> dict[str, Any]:
    tot = summary["totals"]
    found = sorted((c for c in summary["categories"] if c["turns"]), key=lambda c: (-c["interviews"], -c["turns"],
                                                                                     c["name"]))
    n_iv = max(tot["interviews"], 1)
    share = f" ({100 * tot['issue_turns'] / tot['interviewee_turns']:.0f}%)" if tot["interviewee_turns"] else ""
    return {"tot": tot, "share": share,
            "bars": [(c, f"{max(2, 60 * c['interviews'] / n_iv):.0f}") for c in found]}


def categories_view(summary: Mapping[str, Any], turns: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    cats = {c["id"]: c for c in summary["categories"]}
    dims = []
    for dim in summary["dimensions"]:
        members = [cats[c] for c in dim["categories"]]
        present = sorted((c for c in members if c["turns"]), key=lambda c: (-c["turns"], c["name"]))
        dims.append({"name": dim["name"], "n": len(members), "absent": [c for c in members if not c["turns"]],
                     "present": [{"c": c, "where": ", ".join(f"{iv} ({n})" for iv, n in c["by_interview"].items()),
                                  "quotes": [quote_view(ev, turns, c["color"]) for ev in c["evidence"]]}
                                 for c in present]})
    return dims


def interviews_view(summary: Mapping[str, Any]) -> dict[str, Any]:
    found = [c for c in summary["categories"] if c["turns"]]
    return {"ivs": [r["interview"] for r in summary["interviews"]],
            "found": sorted(found, key=lambda c: (c["group"], -c["turns"], c["name"])),
            "vmax": max([n for c in found for n in c["by_interview"].values()] + [1]),
            "absent": ", ".join(c["name"] for c in summary["categories"] if not c["turns"])}


def cooccurrence_view(summary: Mapping[str, Any]) -> dict[str, Any]:
    co, names = summary["cooccurrence"], summary["names"]
    pairs = sorted({(min(a, b), max(a, b)): n for a, r in co["pairs"].items() for b, n in r.items()}.items(),
                   key=lambda kv: (-kv[1], kv[0]))[:5]
    return {"ids": co["categories"], "pairs": co["pairs"],
            "turns": {c["id"]: c["turns"] for c in summary["categories"]},
            "vmax": max([n for row in co["pairs"].values() for n in row.values()] + [1]),
            "top": "; ".join(f"{names.get(a, a)} + {names.get(b, b)} ({plural(n, 'turn')})" for (a, b), n in pairs)}


def matrix_view(summary: Mapping[str, Any]) -> dict[str, Any]:
    found = [r for r in summary["matrix"] if r["turns"]]
    return {"rows": sorted(found, key=lambda r: (-r["turns"], r["name"])), "no_phase": NO_PHASE,
            "vmax": max([r["cells"][c["id"]]["turns"] for r in found for c in summary["phases"]] + [1])}


def mitigations_view(summary: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Mitigation turns by the issue code of the same turn, most first."""
    by_code: Counter = Counter()
    for m in summary["mitigations"]:
        by_code.update(m["categories"] or ["(no issue code)"])
    return sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))


def proposals_view(summary: Mapping[str, Any], turns: Mapping[str, Mapping[str, Any]]) -> dict[str, list]:
    """Proposals in plain words, each quote shown once (a theme and its groups share turns)."""
    props = summary["proposals"]
    names = proposal_titles(props)
    main: list[dict[str, Any]] = []
    aside: list[dict[str, Any]] = []
    shown: set[str] = set()
    for p in props:
        v = proposal_view(p, names)
        fresh = [q for q in v["quotes"] if str(q.get("id", "")) not in shown] or v["quotes"][:1]
        shown.update(str(q.get("id", "")) for q in fresh[:3])
        v["shown"] = [quote_view({"id": q.get("id", ""), "interview": q.get("interview", ""),
                                  "turn": q.get("turn", ""), "quote": shorten(str(q.get("text", ""))),
                                  "text": str(q.get("text", "")), "score": None}, turns) for q in fresh[:3]]
        (aside if v["kind"] else main).append(v)
    return {"main": main, "aside": aside}


def render_html(summary: Mapping[str, Any], figures: Mapping[str, str] | None = None) -> str:
    """The report as one self-contained HTML page: inline CSS and script, no external
    requests, every section readable with scripts off (the filters then stay hidden)."""
    del figures  # the page draws its charts as tables; the SVG figures are separate files
    turns = {t["id"]: t for tr in summary.get("transcripts", []) for t in tr["turns"]}
    return render(
        "report.html.j2", s=summary, sections=SECTIONS, turns=turns, top=TOP_QUOTES,
        iv_index={r["interview"]: i for i, r in enumerate(summary["interviews"], 1)},
        marked=bool(summary.get("reviewed") or summary.get("untrained")),
        about=about_view(summary), glance=glance_view(summary), dims=categories_view(summary, turns),
        interviews=interviews_view(summary), cooc=cooccurrence_view(summary), matrix=matrix_view(summary),
        mitigation_codes=mitigations_view(summary), proposals=proposals_view(summary, turns),
        per_interview={r["interview"]: r for r in summary["interviews"]},
        privacy_rows=[(f.get("file", ""), f.get("line", ""), f.get("kind", ""), f.get("text", ""))
                      for f in summary["privacy"]],
        anchor=anchor, highlight=highlight, heat=heat, reviewed_words=reviewed_words, names_of=names_of,
        code_marks=code_marks)

"""Reports over a batch of predictions: counts, a self-contained HTML page, Markdown, CSV, SVG figures.

:func:`summarize` computes every figure the report shows from the predictions alone
(plus turns for per-interview totals), so a test can recompute them from
``predictions.jsonl``. Renderers only format that summary; every text is escaped.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from extractor.catalog import Catalog
from extractor.jsonl import atomic_open, write_json
from extractor.types import Prediction, Turn
from extractor.types import natural_key as _natural

log = logging.getLogger(__name__)

NO_PHASE = "(no phase)"
TOP_EVIDENCE = 5
MAX_QUOTE = 400

# Stable section ids: the headless-browser test and users' links rely on them.
SECTIONS = (
    ("summary", "Summary"),
    ("privacy", "Privacy check"),
    ("matrix", "Category x phase matrix"),
    ("figures", "Figures"),
    ("interviews", "Interviews"),
    ("categories", "Categories and evidence"),
    ("mitigations", "Mitigation mentions"),
    ("proposals", "Proposed new categories"),
)


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(vars(obj))


def _quote(text: str, n: int = MAX_QUOTE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "\u2026"


def summarize(
    predictions: Sequence[Prediction],
    catalog: Catalog,
    *,
    turns: Sequence[Turn] = (),
    proposals: Sequence[Any] = (),
    privacy: Sequence[Any] = (),
    manifest: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every figure of the report, as plain JSON-able data.

    Matrix cells count turns (and distinct interviews) predicted with a category and a
    phase; a turn with a category but no phase counts in the ``(no phase)`` column.
    """
    cat_ids = list(catalog.category_ids)
    extra_cats = sorted({c for p in predictions for c in p.categories} - set(cat_ids))
    if extra_cats:
        log.warning("predictions use categories absent from %s: %s", catalog.tag, extra_cats)
    cat_ids += extra_cats
    phase_ids = list(catalog.phase_ids)
    extra_phases = sorted({ph for p in predictions for ph in p.phases} - set(phase_ids))
    phase_ids += extra_phases + [NO_PHASE]

    cell_turns: Counter = Counter()
    cell_interviews: dict[tuple[str, str], set[str]] = defaultdict(set)
    cat_turns: Counter = Counter()
    cat_interviews: dict[str, set[str]] = defaultdict(set)
    for p in predictions:
        for c in p.categories:
            cat_turns[c] += 1
            cat_interviews[c].add(p.interview)
            for ph in p.phases or (NO_PHASE,):
                cell_turns[c, ph] += 1
                cell_interviews[c, ph].add(p.interview)

    def name(entry_id: str) -> str:
        return catalog[entry_id].name if entry_id in catalog else entry_id

    matrix = [
        {
            "category": c,
            "name": name(c),
            "cells": {ph: {"turns": cell_turns[c, ph], "interviews": len(cell_interviews[c, ph])} for ph in phase_ids},
            "turns": cat_turns[c],
            "interviews": len(cat_interviews[c]),
        }
        for c in cat_ids
    ]

    # Per interview: predictions give the interviewee turns; turns (if given) the totals.
    all_turns = Counter(t.interview for t in turns)
    per: dict[str, dict[str, Any]] = {}
    for p in predictions:
        row = per.setdefault(p.interview, {"interview": p.interview, "turns": all_turns.get(p.interview, 0),
                                           "interviewee_turns": 0, "issue_turns": 0, "mitigation_turns": 0,
                                           "_cats": Counter()})
        row["interviewee_turns"] += 1
        row["issue_turns"] += bool(p.categories)
        row["mitigation_turns"] += bool(p.mitigation)
        row["_cats"].update(p.categories)
    for iv, n in all_turns.items():
        per.setdefault(iv, {"interview": iv, "turns": n, "interviewee_turns": 0, "issue_turns": 0,
                            "mitigation_turns": 0, "_cats": Counter()})
    interviews = []
    for iv in sorted(per, key=_natural):
        row = per[iv]
        cats = row.pop("_cats")
        row["categories"] = len(cats)
        row["top_categories"] = [c for c, _ in sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
        interviews.append(row)

    categories = []
    for c in cat_ids:
        hits = [p for p in predictions if c in p.categories]
        hits.sort(key=lambda p: (-float(p.scores.get(c, 0.0)), _natural(p.interview), p.turn))
        entry = catalog[c] if c in catalog else None
        categories.append({
            "id": c,
            "name": name(c),
            "definition": entry.definition if entry else "",
            "dimension": entry.dimension if entry else "",
            "turns": cat_turns[c],
            "interviews": len(cat_interviews[c]),
            "evidence": [
                {"interview": p.interview, "turn": p.turn, "id": p.id, "score": round(float(p.scores.get(c, 0.0)), 4),
                 "quote": _quote(p.evidence.get(c) or p.text)}
                for p in hits[:TOP_EVIDENCE]
            ],
        })

    mitigations = [
        {"interview": p.interview, "turn": p.turn, "id": p.id,
         "score": round(float(p.scores.get("mitigation", 0.0)), 4),
         "categories": list(p.categories), "quote": _quote(p.text)}
        for p in sorted(predictions, key=lambda p: (_natural(p.interview), p.turn)) if p.mitigation
    ]

    return {
        "catalog": catalog.tag,
        "totals": {
            "interviews": len({p.interview for p in predictions} | set(all_turns)),
            "turns": len(turns),
            "interviewee_turns": len(predictions),
            "issue_turns": sum(bool(p.categories) for p in predictions),
            "mitigation_turns": sum(bool(p.mitigation) for p in predictions),
            "category_labels": sum(len(p.categories) for p in predictions),
            "proposals": len(proposals),
            "privacy_warnings": len(privacy),
        },
        "phases": [{"id": ph, "name": name(ph) if ph != NO_PHASE else NO_PHASE} for ph in phase_ids],
        "matrix": matrix,
        "interviews": interviews,
        "categories": categories,
        "mitigations": mitigations,
        "proposals": [_as_dict(p) for p in proposals],
        "privacy": [_as_dict(f) for f in privacy],
        "manifest": dict(manifest or {}),
    }


# --- figures ----------------------------------------------------------------


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _shade(v: float) -> str:
    # White to dark blue; dark cells get white text.
    r, g, b = (int(255 - v * (255 - c)) for c in (31, 78, 140))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap_svg(summary: Mapping[str, Any], value: str = "turns") -> str:
    """Category x phase heatmap as a standalone SVG document (counts of ``value``)."""
    rows = summary["matrix"]
    cols = summary["phases"]
    cw, ch, left, top = 64, 18, 300, 150
    width, height = left + cw * len(cols) + 10, top + ch * len(rows) + 10
    vmax = max([r["cells"][c["id"]][value] for r in rows for c in cols] + [1])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img">',
           f"<title>Categories x phases ({_e(value)})</title>"]
    for j, c in enumerate(cols):
        x = left + j * cw + cw / 2
        out.append(f'<text x="{x}" y="{top - 6}" transform="rotate(-45 {x} {top - 6})">{_e(c["name"])}</text>')
    for i, r in enumerate(rows):
        y = top + i * ch
        out.append(f'<text x="{left - 6}" y="{y + ch - 5}" text-anchor="end">{_e(r["name"])}</text>')
        for j, c in enumerate(cols):
            v = r["cells"][c["id"]][value]
            frac = v / vmax
            out.append(f'<rect x="{left + j * cw}" y="{y}" width="{cw - 1}" height="{ch - 1}" fill="{_shade(frac)}">'
                       f'<title>{_e(r["name"])} / {_e(c["name"])}: {v}</title></rect>')
            if v:
                fill = "#fff" if frac > 0.5 else "#000"
                out.append(f'<text x="{left + j * cw + cw / 2}" y="{y + ch - 5}" text-anchor="middle" '
                           f'fill="{fill}">{v}</text>')
    out.append("</svg>")
    return "\n".join(out)


def bar_svg(summary: Mapping[str, Any], value: str = "interviews") -> str:
    """Horizontal bar chart: categories by number of interviews (or turns), largest first."""
    rows = sorted(summary["matrix"], key=lambda r: (-r[value], r["name"]))
    bh, left, plot = 18, 300, 360
    width, height = left + plot + 50, 30 + bh * len(rows) + 10
    vmax = max([r[value] for r in rows] + [1])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img">',
           f"<title>Categories by number of {_e(value)}</title>",
           f'<text x="{left}" y="16" font-weight="bold">Number of {_e(value)}</text>']
    for i, r in enumerate(rows):
        y = 30 + i * bh
        w = plot * r[value] / vmax
        out.append(f'<text x="{left - 6}" y="{y + bh - 5}" text-anchor="end">{_e(r["name"])}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bh - 3}" fill="#1f4e8c">'
                   f'<title>{_e(r["name"])}: {r[value]}</title></rect>')
        out.append(f'<text x="{left + w + 4:.1f}" y="{y + bh - 5}">{r[value]}</text>')
    out.append("</svg>")
    return "\n".join(out)


# --- HTML -------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:75em;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.2em .5em;vertical-align:top}
th{background:#f0f3f8;text-align:left}td.n{text-align:right}td.z{color:#bbb;text-align:right}
.warn{background:#fff4e5;border-left:4px solid #e69500;padding:.5em 1em}
.ok{background:#eef8ee;border-left:4px solid #3a3;padding:.5em 1em}
blockquote{margin:.3em 0 .8em 1em;padding-left:.8em;border-left:3px solid #ccd;color:#333}
.meta{color:#666;font-size:.9em}nav a{margin-right:1em}figure{margin:1em 0}
"""


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    out = [f'<table class="{_e(cls)}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for v in row:
            if isinstance(v, tuple):  # (raw_html_cell,) already built
                cells.append(v[0])
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                cells.append(f'<td class="n">{_e(v)}</td>')
            else:
                cells.append(f"<td>{_e(v)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _proposal_fields(p: Mapping[str, Any]) -> tuple[str, str, list[str]]:
    title = str(p.get("name") or p.get("label") or p.get("title") or p.get("id") or "proposal")
    desc = str(p.get("definition") or p.get("description") or "")
    details = []
    for key in ("id", "level", "parent", "suggestion", "size", "n_interviews", "keywords", "phases", "nearest"):
        v = p.get(key)
        if v in (None, "", [], ()):
            continue
        if key == "nearest":
            v = [f"{n.get('name') or n.get('id')} ({float(n.get('similarity', 0)):.2f})" if isinstance(n, Mapping)
                 else str(n) for n in v[:3]]
        details.append(f"{key}: {', '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}")
    return title, desc, details


def _proposal_quotes(p: Mapping[str, Any], n: int = 3) -> list[tuple[str, str]]:
    out = []
    for q in list(p.get("quotes") or [])[:n]:
        if isinstance(q, Mapping):
            out.append((_quote(str(q.get("text", ""))), f"{q.get('interview', '')}, turn {q.get('turn', '')}"))
    return out


def render_html(summary: Mapping[str, Any], figures: Mapping[str, str] | None = None) -> str:
    """Self-contained HTML page (inline CSS, inline SVG figures, no scripts, no external links)."""
    figures = figures if figures is not None else {"heatmap": heatmap_svg(summary), "bars": bar_svg(summary)}
    tot = summary["totals"]
    man = summary.get("manifest") or {}
    parts = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
             "<title>qi-extractor report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>Quality issues in ML systems: extraction report</h1>",
             "<nav>" + "".join(f'<a href="#{sid}">{_e(t)}</a>' for sid, t in SECTIONS) + "</nav>"]

    parts.append('<section id="summary"><h2>Summary</h2>')
    parts.append(_table(["what", "count"], [
        ("interviews", tot["interviews"]), ("turns", tot["turns"]), ("interviewee turns", tot["interviewee_turns"]),
        ("turns with at least one issue", tot["issue_turns"]), ("category labels", tot["category_labels"]),
        ("mitigation mentions", tot["mitigation_turns"]), ("proposed categories", tot["proposals"]),
        ("privacy warnings", tot["privacy_warnings"])], cls="totals"))
    meta = [f"catalog {summary['catalog']}"]
    if man.get("model"):
        m = man["model"]
        meta.append(f"model {m.get('name') or m.get('path', '')} ({str(m.get('fingerprint', ''))[:12]})")
    if man.get("created"):
        meta.append(f"run {man['created']}")
    parts.append(f'<p class="meta">{_e("; ".join(meta))}</p></section>')

    parts.append('<section id="privacy"><h2>Privacy check</h2>')
    if summary["privacy"]:
        parts.append(f'<div class="warn"><p><strong>Warning:</strong> {len(summary["privacy"])} likely unredacted '
                     "personal data found in the transcripts; redact them before sharing this report or the exports.</p>")
        parts.append(_table(["file", "line", "kind", "match"],
                            [(f.get("file", ""), f.get("line", ""), f.get("kind", ""), f.get("text", ""))
                             for f in summary["privacy"]], cls="privacy") + "</div>")
    else:
        parts.append('<p class="ok">No likely personal data (e-mail addresses, phone numbers, person names) found.</p>')
    parts.append("</section>")

    parts.append('<section id="matrix"><h2>Category x phase matrix</h2>'
                 "<p>Each cell: turns / distinct interviews predicted with the category and the phase.</p>")
    head = "<tr><th>category</th>" + "".join(f"<th>{_e(c['name'])}</th>" for c in summary["phases"]) + \
        "<th>all turns</th><th>all interviews</th></tr>"
    rows = []
    for r in summary["matrix"]:
        cells = [f'<th data-category="{_e(r["category"])}">{_e(r["name"])}</th>']
        for c in summary["phases"]:
            v = r["cells"][c["id"]]
            cls = "n" if v["turns"] else "z"
            cells.append(f'<td class="{cls} cell" data-category="{_e(r["category"])}" data-phase="{_e(c["id"])}" '
                         f'data-turns="{v["turns"]}" data-interviews="{v["interviews"]}">{v["turns"]} / {v["interviews"]}</td>')
        cells.append(f'<td class="n" data-total-turns="{r["turns"]}">{r["turns"]}</td>'
                     f'<td class="n" data-total-interviews="{r["interviews"]}">{r["interviews"]}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    parts.append(f'<table class="matrix"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></section>')

    parts.append('<section id="figures"><h2>Figures</h2>')
    parts.append(f'<figure id="figure-heatmap">{figures["heatmap"]}<figcaption>Turns per category and phase.'
                 "</figcaption></figure>")
    parts.append(f'<figure id="figure-bars">{figures["bars"]}<figcaption>Categories by number of interviews.'
                 "</figcaption></figure></section>")

    parts.append('<section id="interviews"><h2>Interviews</h2>')
    parts.append(_table(["interview", "turns", "interviewee turns", "turns with issues", "categories",
                         "mitigation mentions", "top categories"],
                        [(r["interview"], r["turns"], r["interviewee_turns"], r["issue_turns"], r["categories"],
                          r["mitigation_turns"], ", ".join(r["top_categories"])) for r in summary["interviews"]],
                        cls="interviews"))
    parts.append("</section>")

    parts.append('<section id="categories"><h2>Categories and evidence</h2>')
    for c in summary["categories"]:
        parts.append(f'<article class="category" id="cat-{_e(c["id"])}"><h3>{_e(c["name"])} '
                     f'<small>({_e(c["id"])})</small></h3>')
        if c["definition"]:
            parts.append(f"<p>{_e(c['definition'])}</p>")
        parts.append(f'<p class="meta">{c["turns"]} turns in {c["interviews"]} interviews</p>')
        for ev in c["evidence"]:
            parts.append(f'<blockquote>{_e(ev["quote"])}<br><span class="meta">{_e(ev["interview"])}, turn '
                         f'{ev["turn"]}, score {ev["score"]:.2f}</span></blockquote>')
        parts.append("</article>")
    parts.append("</section>")

    parts.append('<section id="mitigations"><h2>Mitigation mentions</h2>')
    if summary["mitigations"]:
        parts.append(_table(["interview", "turn", "score", "categories", "text"],
                            [(m["interview"], m["turn"], round(m["score"], 2), ", ".join(m["categories"]), m["quote"])
                             for m in summary["mitigations"]], cls="mitigations"))
    else:
        parts.append("<p>No turn was predicted to describe a mitigation.</p>")
    parts.append("</section>")

    parts.append('<section id="proposals"><h2>Proposed new categories</h2>')
    if summary["proposals"]:
        for p in summary["proposals"]:
            title, desc, details = _proposal_fields(p)
            parts.append(f'<article class="proposal"><h3>{_e(title)}</h3>' + (f"<p>{_e(desc)}</p>" if desc else "")
                         + (f'<p class="meta">{_e("; ".join(details))}</p>' if details else "")
                         + "".join(f'<blockquote>{_e(q)}<br><span class="meta">{_e(w)}</span></blockquote>'
                                   for q, w in _proposal_quotes(p)) + "</article>")
    else:
        parts.append("<p>No uncatalogued issue was proposed.</p>")
    parts.append("</section></body></html>\n")
    return "\n".join(parts)


# --- Markdown ---------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: Mapping[str, Any], figure_paths: Mapping[str, str] | None = None) -> str:
    """The same report in Markdown (figures linked as files)."""
    tot = summary["totals"]
    out = ["# Quality issues in ML systems: extraction report", "", f"Catalog {summary['catalog']}.", "",
           "## Summary", "", "| what | count |", "| --- | ---: |"]
    for k, v in tot.items():
        out.append(f"| {k.replace('_', ' ')} | {v} |")
    out += ["", "## Privacy check", ""]
    if summary["privacy"]:
        out.append(f"**Warning:** {len(summary['privacy'])} likely unredacted personal data found:")
        out.append("")
        for f in summary["privacy"]:
            out.append(f"- `{_md(f.get('file', ''))}:{f.get('line', '')}` {f.get('kind', '')}: {_md(f.get('text', ''))}")
    else:
        out.append("No likely personal data found.")
    out += ["", "## Category x phase matrix", "", "Cells: turns / interviews.", ""]
    out.append("| category | " + " | ".join(_md(c["name"]) for c in summary["phases"]) + " | turns | interviews |")
    out.append("| --- |" + " ---: |" * (len(summary["phases"]) + 2))
    for r in summary["matrix"]:
        cells = [f"{r['cells'][c['id']]['turns']} / {r['cells'][c['id']]['interviews']}" for c in summary["phases"]]
        out.append(f"| {_md(r['name'])} | " + " | ".join(cells) + f" | {r['turns']} | {r['interviews']} |")
    if figure_paths:
        out += ["", "## Figures", ""] + [f"![{k}]({v})" for k, v in figure_paths.items()]
    out += ["", "## Interviews", "", "| interview | turns | interviewee turns | turns with issues | categories | "
            "mitigation mentions | top categories |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in summary["interviews"]:
        out.append(f"| {_md(r['interview'])} | {r['turns']} | {r['interviewee_turns']} | {r['issue_turns']} | "
                   f"{r['categories']} | {r['mitigation_turns']} | {_md(', '.join(r['top_categories']))} |")
    out += ["", "## Categories and evidence", ""]
    for c in summary["categories"]:
        out += [f"### {_md(c['name'])} (`{c['id']}`)", ""]
        if c["definition"]:
            out += [_md(c["definition"]), ""]
        out += [f"{c['turns']} turns in {c['interviews']} interviews.", ""]
        for ev in c["evidence"]:
            out += [f"> {_md(ev['quote'])}", f"> — {_md(ev['interview'])}, turn {ev['turn']}, score {ev['score']:.2f}", ""]
    out += ["## Mitigation mentions", ""]
    if summary["mitigations"]:
        out += ["| interview | turn | score | categories | text |", "| --- | ---: | ---: | --- | --- |"]
        out += [f"| {_md(m['interview'])} | {m['turn']} | {m['score']:.2f} | {_md(', '.join(m['categories']))} | "
                f"{_md(m['quote'])} |" for m in summary["mitigations"]]
    else:
        out.append("None.")
    out += ["", "## Proposed new categories", ""]
    if summary["proposals"]:
        for p in summary["proposals"]:
            title, desc, details = _proposal_fields(p)
            out.append(f"- **{_md(title)}**" + (f": {_md(desc)}" if desc else "")
                       + (f" ({_md('; '.join(details))})" if details else ""))
    else:
        out.append("None.")
    return "\n".join(out) + "\n"


# --- CSV --------------------------------------------------------------------

CSV_FIELDS = ("interview", "turn", "id", "category", "category_name", "score", "phases", "mitigation",
              "start", "end", "file", "evidence", "text")


def coded_segments_csv(predictions: Sequence[Prediction], catalog: Catalog,
                       turns: Sequence[Turn] = ()) -> str:
    """One row per (turn, predicted category): the coded segments, with character ranges when known."""
    src = {t.id: t.source for t in turns if t.source}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for p in predictions:
        s = src.get(p.id) or {}
        for c in p.categories:
            w.writerow([p.interview, p.turn, p.id, c, catalog[c].name if c in catalog else c,
                        f"{float(p.scores.get(c, 0.0)):.4f}", ";".join(p.phases), int(p.mitigation),
                        s.get("start", ""), s.get("end", ""), s.get("file", ""), p.evidence.get(c, ""), p.text])
    return buf.getvalue()


def write_report(
    out_dir: str | Path,
    predictions: Sequence[Prediction],
    catalog: Catalog,
    *,
    turns: Sequence[Turn] = (),
    proposals: Sequence[Any] = (),
    privacy: Sequence[Any] = (),
    manifest: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``report.html``, ``report.md``, ``coded_segments.csv``, ``summary.json`` and
    ``figures/*.svg`` into ``out_dir`` (each atomically); return their paths."""
    out = Path(out_dir)
    summary = summarize(predictions, catalog, turns=turns, proposals=proposals, privacy=privacy, manifest=manifest)
    figs = {"heatmap": heatmap_svg(summary), "bars": bar_svg(summary)}
    paths = {"heatmap": out / "figures" / "category_phase_heatmap.svg",
             "bars": out / "figures" / "categories_by_interviews.svg",
             "html": out / "report.html", "markdown": out / "report.md",
             "csv": out / "coded_segments.csv", "summary": out / "summary.json"}
    for key in ("heatmap", "bars"):
        with atomic_open(paths[key]) as fh:
            fh.write(figs[key])
    with atomic_open(paths["html"]) as fh:
        fh.write(render_html(summary, figs))
    with atomic_open(paths["markdown"]) as fh:
        fh.write(render_markdown(summary, {k: str(paths[k].relative_to(out)) for k in ("heatmap", "bars")}))
    with atomic_open(paths["csv"]) as fh:
        fh.write(coded_segments_csv(predictions, catalog, turns))
    write_json(paths["summary"], json.loads(json.dumps(summary, default=str)))
    return paths

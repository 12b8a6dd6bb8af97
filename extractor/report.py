"""Reports over a batch of predictions: a self-contained HTML page, Markdown, CSV, SVG figures.

:func:`summarize` computes every figure the report shows from the predictions (plus turns
for the transcripts and per-interview totals), so a test can recompute them from
``predictions.jsonl``. Renderers only format that summary, and every text that comes from
input (transcript text, speaker and file names, catalog and proposal text) is escaped for
its format: :func:`_e` for HTML, :func:`md_escape` for Markdown, :func:`csv_cell` for CSV.

The HTML page reads top to bottom as a researcher works: what the codes are and how far to
trust them, the privacy check, codes grouped by quality dimension with every quote (each
opens to its full turn and the interviewer's question), the code x interview table, the
co-occurrence matrix, codes by lifecycle phase, each interview as a transcript with its
codes in the margin, mitigations and proposed new codes. It needs no network and reads
with scripts off; a few lines of vanilla JavaScript add the filters (confidence, interview,
code) and sortable tables.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from extractor.catalog import Catalog
from extractor.jsonl import atomic_open, write_json
from extractor.types import Prediction, Turn, normalize_text
from extractor.types import natural_key as _natural

log = logging.getLogger(__name__)

NO_PHASE = "(no phase)"
MAX_QUOTE = 300
SHORT_EVIDENCE_WORDS = 5  # an evidence sentence shorter than this ("Okay.") says nothing: quote the turn

# Agreement between the study's human coders, measured with `extractor evaluate` on the
# shared corpus (coder vs coder, turn-level micro-F1); used when the model card has none.
HUMAN_AGREEMENT_FALLBACK = {"categories": 0.43, "phases": 0.53,
                            "source": "two human coders on the study's interviews (turn-level micro-F1)"}

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


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(vars(obj))


def _quote(text: str, n: int = MAX_QUOTE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rsplit(" ", 1)[0].rstrip() + "\u2026"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 turn``, ``2 turns``, ``1 interview``: counts in plain words."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


# --- model quality ------------------------------------------------------------


def _f1_pair(obj: Any) -> dict[str, float]:
    """``{"categories": F1, "phases": F1}`` from the shapes a card uses: a number per group,
    or a mapping per group holding ``f1`` / ``micro_f1``."""
    out: dict[str, float] = {}
    if not isinstance(obj, Mapping):
        return out
    for group in ("categories", "phases"):
        v = obj.get(group)
        if isinstance(v, Mapping):
            v = next((v[k] for k in ("micro_f1", "f1", "F1") if isinstance(v.get(k), (int, float))), None)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[group] = float(v)
    return out


def model_quality(model: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the report says about how far to trust the codes, from the model's card.

    Looks for held-out figures first (``card["evaluation"]``: ``{"model": {...}, "human":
    {...}}`` or per-group ``f1`` / ``human_f1``), then the training-time inner
    cross-validation (``card["metrics"]``). Human agreement falls back to
    :data:`HUMAN_AGREEMENT_FALLBACK`. Missing figures stay missing (the report says so).
    """
    model = dict(model or {})
    card = model.get("card") or {}
    out: dict[str, Any] = {"name": str(model.get("name") or Path(str(model.get("path") or "")).name or ""),
                           "fingerprint": str(model.get("fingerprint") or "")[:12],
                           "created": str(card.get("created") or ""),
                           "model_f1": {}, "model_source": "", "human_f1": {}, "human_source": ""}
    ev = card.get("evaluation")
    if isinstance(ev, Mapping):
        model_f1 = _f1_pair(ev.get("model")) or _f1_pair(ev)
        human = _f1_pair(ev.get("human")) or _f1_pair({g: (ev.get(g) or {}).get("human_f1")
                                                       for g in ("categories", "phases")
                                                       if isinstance(ev.get(g), Mapping)})
        if model_f1:
            out["model_f1"] = model_f1
            out["model_source"] = str(ev.get("method") or ev.get("description")
                                      or "measured on interviews the model was not trained on")
        if human:
            out["human_f1"] = human
            out["human_source"] = str(ev.get("human_source") or "human coders on the same interviews")
    metrics = card.get("metrics")
    if not out["model_f1"] and isinstance(metrics, Mapping):
        for key, v in metrics.items():
            pair = _f1_pair(v)
            if pair and "f1" in key.lower():
                out["model_f1"] = pair
                out["model_source"] = ("cross-validation inside the training data (optimistic: the same "
                                       "interviews chose the settings)" if "optimistic" in key or "inner" in key
                                       else key.replace("_", " "))
                break
    if not out["human_f1"]:
        out["human_f1"] = {k: v for k, v in HUMAN_AGREEMENT_FALLBACK.items() if k != "source"}
        out["human_source"] = HUMAN_AGREEMENT_FALLBACK["source"]
    return out


# --- summary ----------------------------------------------------------------------


def _dimension_group(dimension: str) -> str:
    # "Data quality: accuracy" and "Data quality: consistency" read best side by side
    return dimension.split(":", 1)[0].strip() or "Other"


def _evidence_of(p: Prediction, code: str) -> str:
    ev = normalize_text(p.evidence.get(code) or "")
    return ev if len(ev.split()) >= SHORT_EVIDENCE_WORDS else ""


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
    ``transcripts`` hold every turn in full with its codes (from ``turns``; interviewee
    turns only when no turns are given).
    """
    from extractor.qdpx import code_colors

    cat_ids = list(catalog.category_ids)
    extra_cats = sorted({c for p in predictions for c in p.categories} - set(cat_ids))
    if extra_cats:
        log.warning("predictions use categories absent from %s: %s", catalog.tag, extra_cats)
    cat_ids += extra_cats
    phase_ids = list(catalog.phase_ids)
    extra_phases = sorted({ph for p in predictions for ph in p.phases} - set(phase_ids))
    phase_ids += extra_phases + [NO_PHASE]
    colors = code_colors(catalog)
    spare = iter(("#888888", "#666666", "#AAAAAA") * 50)
    for c in extra_cats + extra_phases:
        colors.setdefault(c, next(spare))

    def name(entry_id: str) -> str:
        if entry_id == "mitigation":
            return "Mitigation"
        return catalog[entry_id].name if entry_id in catalog else entry_id

    preds = sorted(predictions, key=lambda p: (_natural(p.interview), p.turn))
    cell_turns: Counter = Counter()
    cell_interviews: dict[tuple[str, str], set[str]] = defaultdict(set)
    cat_turns: Counter = Counter()
    cat_interviews: dict[str, set[str]] = defaultdict(set)
    by_iv: dict[str, Counter] = defaultdict(Counter)
    co: Counter = Counter()
    for p in preds:
        for c in p.categories:
            cat_turns[c] += 1
            cat_interviews[c].add(p.interview)
            by_iv[c][p.interview] += 1
            for ph in p.phases or (NO_PHASE,):
                cell_turns[c, ph] += 1
                cell_interviews[c, ph].add(p.interview)
        for a in p.categories:
            for b in p.categories:
                if a != b:
                    co[a, b] += 1

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
    empty = {"turns": 0, "interviewee_turns": 0, "issue_turns": 0, "mitigation_turns": 0}
    for p in preds:
        row = per.setdefault(p.interview, {"interview": p.interview, **empty, "_cats": Counter()})
        row["interviewee_turns"] += 1
        row["issue_turns"] += bool(p.categories)
        row["mitigation_turns"] += bool(p.mitigation)
        row["_cats"].update(p.categories)
    for iv, n in all_turns.items():
        per.setdefault(iv, {"interview": iv, **empty, "_cats": Counter()})["turns"] = n
    interviews = []
    for iv in sorted(per, key=_natural):
        row = per[iv]
        cats = row.pop("_cats")
        row["turns"] = row["turns"] or row["interviewee_turns"]
        row["categories"] = len(cats)
        row["top_categories"] = [c for c, _ in sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
        interviews.append(row)
    iv_names = [r["interview"] for r in interviews]

    categories = []
    for c in cat_ids:
        hits = [p for p in preds if c in p.categories]
        hits.sort(key=lambda p: (-float(p.scores.get(c, 0.0)), _natural(p.interview), p.turn))
        entry = catalog[c] if c in catalog else None
        categories.append({
            "id": c,
            "name": name(c),
            "color": colors.get(c, "#888888"),
            "definition": entry.definition if entry else "",
            "dimension": entry.dimension if entry else "",
            "group": _dimension_group(entry.dimension if entry else ""),
            "turns": cat_turns[c],
            "interviews": len(cat_interviews[c]),
            "by_interview": {iv: by_iv[c][iv] for iv in iv_names if by_iv[c][iv]},
            "evidence": [
                {"interview": p.interview, "turn": p.turn, "id": p.id, "score": round(float(p.scores.get(c, 0.0)), 4),
                 "quote": _quote(_evidence_of(p, c) or p.text), "evidence": _evidence_of(p, c)}
                for p in hits
            ],
        })
    groups: dict[str, list[str]] = {}
    for c in categories:
        groups.setdefault(c["group"], []).append(c["id"])
    dimensions = [{"name": g, "categories": ids} for g, ids in
                  sorted(groups.items(), key=lambda kv: (kv[0] == "Other", -sum(cat_turns[c] for c in kv[1]), kv[0]))]

    found = [c for c in cat_ids if cat_turns[c]]
    found.sort(key=lambda c: (-cat_turns[c], name(c)))
    cooccurrence = {"categories": found,
                    "pairs": {a: {b: co[a, b] for b in found if co[a, b]} for a in found}}

    mitigations = [
        {"interview": p.interview, "turn": p.turn, "id": p.id,
         "score": round(float(p.scores.get("mitigation", 0.0)), 4),
         "categories": list(p.categories), "quote": _quote(p.text, 200)}
        for p in preds if p.mitigation
    ]

    # Every turn in full, with its codes: the transcript view and the quotes' context.
    pred_by_id = {p.id: p for p in preds}
    source = list(turns) or [Turn(p.interview, p.turn, "interviewee", p.text, question=p.question, id=p.id)
                             for p in preds]
    by_interview: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in sorted(source, key=lambda t: (_natural(t.interview), t.turn)):
        p = pred_by_id.get(t.id)
        row: dict[str, Any] = {"turn": t.turn, "id": t.id, "speaker": t.speaker,
                               "who": t.speaker_raw or t.speaker.capitalize(), "text": normalize_text(t.text),
                               "question": normalize_text(t.question or (p.question if p else ""))}
        if p is not None:
            row["codes"] = [{"id": c, "score": round(float(p.scores.get(c, 0.0)), 4), "evidence": _evidence_of(p, c)}
                            for c in sorted(p.categories, key=lambda c: -float(p.scores.get(c, 0.0)))]
            row["phases"] = [{"id": ph, "score": round(float(p.scores.get(ph, 0.0)), 4)} for ph in p.phases]
            row["mitigation"] = round(float(p.scores.get("mitigation", 0.0)), 4) if p.mitigation else None
        by_interview[t.interview].append(row)
    transcripts = [{"interview": iv, "turns": by_interview[iv]} for iv in sorted(by_interview, key=_natural)]

    man = dict(manifest or {})
    return {
        "catalog": catalog.tag,
        "model": model_quality(man.get("model")),
        "totals": {
            "interviews": len({p.interview for p in preds} | set(all_turns)),
            "turns": len(turns) or len(preds),
            "interviewee_turns": len(preds),
            "issue_turns": sum(bool(p.categories) for p in preds),
            "mitigation_turns": sum(bool(p.mitigation) for p in preds),
            "category_labels": sum(len(p.categories) for p in preds),
            "categories_found": len(found),
            "categories": len(cat_ids),
            "proposals": len(proposals),
            "privacy_warnings": len(privacy),
        },
        "colors": {k: v for k, v in colors.items()},
        "names": {c: name(c) for c in [*cat_ids, *phase_ids[:-1], "mitigation"]},
        "phases": [{"id": ph, "name": name(ph) if ph != NO_PHASE else NO_PHASE} for ph in phase_ids],
        "matrix": matrix,
        "dimensions": dimensions,
        "interviews": interviews,
        "categories": categories,
        "cooccurrence": cooccurrence,
        "mitigations": mitigations,
        "transcripts": transcripts,
        "proposals": [_as_dict(p) for p in proposals],
        "privacy": [_as_dict(f) for f in privacy],
        "manifest": {k: v for k, v in man.items() if k in ("created", "tool", "catalog")},
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
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;line-height:1.45;background:#fff}
main{max-width:78em;margin:0 auto;padding:1em 2em 4em}
h1{font-size:1.6em;margin:.4em 0 .2em}h2{margin-top:2.2em;border-bottom:2px solid #e3e8f0;padding-bottom:.2em}
h3{margin:1.6em 0 .4em;color:#33415c}h4{margin:1.2em 0 .2em;font-size:1.05em}
a{color:#1f4e8c}[id]{scroll-margin-top:3em}tbody th{text-align:left;white-space:nowrap}small,.meta{color:#5d6778;font-size:.88em}
nav.toc{display:flex;flex-wrap:wrap;gap:.3em 1.2em;margin:.6em 0 0;font-size:.92em}
.about{background:#f4f7fb;border:1px solid #dbe3ef;border-radius:8px;padding:.8em 1.2em}
.about p{margin:.4em 0}.trust{border-collapse:collapse;margin:.5em 0}
.trust td,.trust th{padding:.15em .8em;border-bottom:1px solid #dbe3ef;text-align:left}
.trust td.n{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fff4e5;border-left:5px solid #e69500;padding:.5em 1em;border-radius:4px}
.ok{background:#eef8ee;border-left:5px solid #3a3;padding:.5em 1em;border-radius:4px}
#filters{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid #dbe3ef;
 padding:.45em 2em;display:flex;gap:1.6em;align-items:center;flex-wrap:wrap;font-size:.92em}
#filters[hidden]{display:none}#filters label{display:flex;gap:.4em;align-items:center}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:.92em}
th,td{border:1px solid #dde2ea;padding:.2em .5em;vertical-align:top}
thead th{background:#f0f3f8;text-align:left;position:relative}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.z{color:transparent}
table.sortable thead th{cursor:pointer}table.sortable thead th:hover{background:#e2e8f2}
.heat td.n{min-width:2.6em}
.scroll{overflow-x:auto;max-width:100%}
th.v{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:normal;
 padding:.4em .2em;max-height:14em}
.cooc td.diag{background:#f3f3f3;color:#999;font-style:italic}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.4em;vertical-align:baseline}
.dimension{margin-top:1.6em}.notfound{color:#5d6778;font-size:.9em}
article.category{border-left:6px solid var(--c,#888);padding:.1em 0 .4em 1em;margin:1em 0}
article.category h4{margin-top:.3em}.def{margin:.1em 0 .3em;color:#3d4656}
details.quote{margin:.25em 0;border:1px solid #e3e8f0;border-radius:6px;padding:.3em .7em;background:#fcfdff}
details.quote>summary{cursor:pointer}details.quote[open]{background:#f7f9fc}
.q{font-style:italic}.ctx{margin:.4em 0 .2em;padding:.3em .8em;border-left:3px solid #c9d3e3}
.ctx p{margin:.3em 0}.ctx .question{color:#5d6778}
mark{background:#fff0a8;padding:0 .1em;border-radius:2px}
details.more>summary{cursor:pointer;color:#1f4e8c;margin:.3em 0}
.transcript{margin:1.5em 0 2.5em}
.turn{display:grid;grid-template-columns:1fr 17em;gap:0 1em;border-top:1px solid #eef1f5;padding:.35em 0}
.turn.interviewer .body{color:#5d6778}
.turn .who{font-weight:600;margin-right:.4em}.turn .num{color:#9aa3b2;font-size:.8em;margin-right:.4em}
.margin{display:flex;flex-direction:column;gap:.15em;font-size:.82em}
.chip{border-left:6px solid var(--c,#888);background:#f5f7fa;padding:0 .4em;border-radius:0 3px 3px 0}
.chip.phase{background:#fff;color:#5d6778}.turn.coded{background:linear-gradient(90deg,#fafbfd,#fff)}
.off{display:none!important}
.prop{border:1px solid #e3e8f0;border-radius:8px;padding:.3em 1em .6em;margin:.8em 0}
.prop .tag{display:inline-block;font-size:.78em;border-radius:3px;padding:0 .4em;background:#e8eef8;color:#33415c;margin-left:.5em}
.bars{display:grid;grid-template-columns:16em 1fr;gap:.15em .8em;font-size:.9em;max-width:50em}
.bar{background:#1f4e8c;height:1em;border-radius:2px;display:inline-block;vertical-align:middle}
"""

_JS = """
(function(){
var d=document,conf=d.getElementById('f-conf'),out=d.getElementById('f-conf-v'),
    iv=d.getElementById('f-iv'),q=d.getElementById('f-code');
d.getElementById('filters').hidden=false;
function apply(){
  var c=parseFloat(conf.value),v=iv.value,s=q.value.trim().toLowerCase();
  out.textContent=c.toFixed(2);
  d.querySelectorAll('[data-score]').forEach(function(e){
    var other=v&&e.dataset.interview&&e.dataset.interview!==v;
    e.classList.toggle('off',parseFloat(e.dataset.score)<c||!!other);});
  d.querySelectorAll('article.category').forEach(function(a){
    a.classList.toggle('off',!!s&&a.dataset.name.indexOf(s)<0);
    var n=a.querySelectorAll('details.quote:not(.off)').length,el=a.querySelector('.shown');
    if(el)el.textContent=(c>0||v)?' \\u00b7 '+n+' shown with the filters':'';});
  d.querySelectorAll('section.transcript').forEach(function(t){
    t.classList.toggle('off',!!v&&t.dataset.interview!==v);});
}
[conf,iv,q].forEach(function(e){e.addEventListener('input',apply);});
d.querySelectorAll('table.sortable').forEach(function(tb){
  tb.querySelectorAll('thead th').forEach(function(th){
    th.title='click to sort';
    th.addEventListener('click',function(){
      var i=th.cellIndex,body=tb.tBodies[0],rows=Array.prototype.slice.call(body.rows),
          dir=th.dataset.dir==='desc'?1:-1;th.dataset.dir=dir===1?'asc':'desc';
      function key(r){var t=(r.cells[i]||{}).textContent||'',x=parseFloat(t);return isNaN(x)?(t?t.toLowerCase():''):x;}
      rows.sort(function(a,b){var x=key(a),y=key(b);if(x===''&&y!=='')return 1;if(y===''&&x!=='')return -1;
        if(typeof x==='number'&&typeof y!=='number')return -1;if(typeof y==='number'&&typeof x!=='number')return 1;
        return x<y?-dir:x>y?dir:0;});
      rows.forEach(function(r){body.appendChild(r);});});});});
})();
"""


def _anchor(turn_id: str) -> str:
    return "t-" + re.sub(r"[^A-Za-z0-9_-]", "_", str(turn_id))


def _iv_anchor(interview: str, index: Mapping[str, int]) -> str:
    return f"iv-{index.get(interview, 0)}"


def _highlight(text: str, marks: Sequence[tuple[str, str]]) -> str:
    """``text`` escaped, with each ``(evidence, colour)`` found in it wrapped in ``<mark>``."""
    spans: list[tuple[int, int, str]] = []
    for ev, color in marks:
        if not ev:
            continue
        i = text.find(ev)
        if i < 0:
            continue
        if all(i >= e or i + len(ev) <= s for s, e, _ in spans):
            spans.append((i, i + len(ev), color))
    out, pos = [], 0
    for s, e, color in sorted(spans):
        out.append(_e(text[pos:s]))
        style = f' style="background:{color}33;box-shadow:inset 0 -2px {color}"' if color else ""
        out.append(f"<mark{style}>{_e(text[s:e])}</mark>")
        pos = e
    out.append(_e(text[pos:]))
    return "".join(out)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _about_html(summary: Mapping[str, Any]) -> str:
    m = summary["model"]
    tot = summary["totals"]
    mf, hf = m.get("model_f1") or {}, m.get("human_f1") or {}
    model = _e(m.get("name") or "an unnamed model") + (f" <small>({_e(m['fingerprint'])})</small>"
                                                         if m.get("fingerprint") else "")
    rows = "".join(f'<tr><th>{label}</th><td class="n" data-model-f1="{_e(_f(mf.get(g)))}">{_f(mf.get(g))}</td>'
                   f'<td class="n" data-human-f1="{_e(_f(hf.get(g)))}">{_f(hf.get(g))}</td></tr>'
                   for g, label in (("categories", "Issue categories"), ("phases", "Lifecycle phases")))
    when = summary.get("manifest", {}).get("created", "")
    src = (f"Model figures: {_e(m['model_source'])}. " if m.get("model_source") else
           "The model card records no measured F1 for this model. ")
    return (
        '<section id="about" class="about"><h2 style="margin-top:.2em;border:0">What these codes are</h2>'
        f"<p><strong>Every code in this report was assigned by a machine-learning model, not by a person.</strong> "
        f"Model: {model}; catalog of codes: {_e(summary['catalog'])}"
        + (f"; run {_e(when)}" if when else "") + ".</p>"
        "<p>How often the model's codes match a human coder's, beside how often two human coders match each other "
        "(F1 per turn: 0 = never, 1 = always):</p>"
        f'<table class="trust"><thead><tr><th></th><th>model vs human</th><th>human vs human</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        f'<p class="meta">{src}Human figures: {_e(m.get("human_source", ""))}.</p>'
        "<p>Read each code as a suggestion to check against its quote: open a quote to see the whole turn and the "
        "question it answered. Each code carries the model's <em>confidence</em> (0 to 1); a code is given when the "
        "confidence passes that code's threshold, which is low for rare codes, so 0.20 can already be a code. "
        "The filter at the top hides codes below a confidence you choose.</p>"
        f"<p>{plural(tot['interviews'], 'interview')}, {plural(tot['turns'], 'turn')}, "
        f"{tot['interviewee_turns']} of them by interviewees; {plural(tot['issue_turns'], 'turn')} coded with "
        f"{plural(tot['categories_found'], 'issue category', 'issue categories')} of {tot['categories']}.</p>"
        "</section>"
    )


def _filters_html(summary: Mapping[str, Any]) -> str:
    opts = "".join(f'<option value="{_e(r["interview"])}">{_e(r["interview"])}</option>'
                   for r in summary["interviews"])
    return ('<div id="filters" hidden><strong>Filters</strong>'
            '<label>confidence at least <input type="range" id="f-conf" min="0" max="1" step="0.05" value="0">'
            '<output id="f-conf-v">0.00</output></label>'
            f'<label>interview <select id="f-iv"><option value="">all</option>{opts}</select></label>'
            '<label>code <input type="search" id="f-code" placeholder="name contains..." size="16"></label></div>')


def _privacy_html(summary: Mapping[str, Any]) -> str:
    found = summary["privacy"]
    if not found:
        return ('<section id="privacy"><h2>Privacy check</h2><p class="ok">No likely personal data (e-mail '
                "addresses, phone numbers, person names) found in the transcripts.</p></section>")
    rows = _table(["file", "line", "kind", "what was found"],
                  [(f.get("file", ""), f.get("line", ""), f.get("kind", ""), f.get("text", "")) for f in found],
                  cls="privacy")
    return ('<section id="privacy"><h2>Privacy check</h2><div class="warn"><p><strong>Warning:</strong> '
            f"{plural(len(found), 'likely piece', 'likely pieces')} of unredacted personal data in the transcripts. "
            "They appear in this report and the exports too: redact the transcripts and run again before sharing "
            f"any of them.</p><details><summary>Show where</summary>{rows}</details></div></section>")


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


def _summary_html(summary: Mapping[str, Any]) -> str:
    tot = summary["totals"]
    found = sorted((c for c in summary["categories"] if c["turns"]), key=lambda c: (-c["interviews"], -c["turns"],
                                                                                     c["name"]))
    n_iv = max(tot["interviews"], 1)
    bars = "".join(
        f'<div><span class="swatch" style="background:{_e(c["color"])}"></span><a href="#cat-{_e(c["id"])}">'
        f'{_e(c["name"])}</a></div><div><span class="bar" style="width:{max(2, 60 * c["interviews"] / n_iv):.0f}%">'
        f'</span> {plural(c["turns"], "turn")} in {plural(c["interviews"], "interview")}</div>' for c in found)
    share = f" ({100 * tot['issue_turns'] / tot['interviewee_turns']:.0f}%)" if tot["interviewee_turns"] else ""
    return ('<section id="summary"><h2>At a glance</h2>'
            f"<p>{plural(tot['issue_turns'], 'interviewee turn')}{share} carry at least one issue code; "
            f"{plural(tot['mitigation_turns'], 'turn')} describe how an issue was fixed or avoided; discovery "
            f"proposes {plural(tot['proposals'], 'possible new code')}. Codes found, by how many interviews "
            f"mention them:</p><div class=\"bars\">{bars or '<div>none</div>'}</div></section>")


def _quote_html(ev: Mapping[str, Any], turns: Mapping[str, Mapping[str, Any]], color: str = "") -> str:
    t = turns.get(ev["id"]) or {}
    text = t.get("text") or ev.get("text") or ev.get("quote", "")
    question = t.get("question", "")
    score = ev.get("score")
    attrs = f' data-interview="{_e(ev["interview"])}"' + (f' data-score="{score:.4f}"' if score is not None else "")
    conf = f" \u00b7 confidence {score:.2f}" if score is not None else ""
    body = (f'<p class="question"><b>Question:</b> {_e(question)}</p>' if question else "") + \
        f'<p class="answer"><b>{_e(t.get("who") or "Interviewee")}:</b> ' \
        f'{_highlight(text, [(ev.get("evidence") or "", color)])}</p>' + \
        (f'<a href="#{_anchor(ev["id"])}">in the transcript</a>' if t else "")
    return (f'<details class="quote"{attrs}><summary><span class="q">\u201c{_e(ev["quote"])}\u201d</span> '
            f'<span class="meta">{_e(ev["interview"])}, turn {_e(ev["turn"])}{conf}</span></summary>'
            f'<div class="ctx">{body}</div></details>')


def _categories_html(summary: Mapping[str, Any], turns: Mapping[str, Mapping[str, Any]], top: int = 5) -> str:
    cats = {c["id"]: c for c in summary["categories"]}
    parts = ['<section id="categories"><h2>Codes by quality dimension</h2>'
             "<p>Each code with its definition and every turn coded with it, most confident first. Click a quote "
             "to read the whole turn and the question it answered.</p>"]
    for dim in summary["dimensions"]:
        members = [cats[c] for c in dim["categories"]]
        present = sorted((c for c in members if c["turns"]), key=lambda c: (-c["turns"], c["name"]))
        absent = [c for c in members if not c["turns"]]
        parts.append(f'<div class="dimension"><h3>{_e(dim["name"])} <small>'
                     f'{plural(len(present), "code")} found of {len(members)}</small></h3>')
        for c in present:
            where = ", ".join(f"{iv} ({n})" for iv, n in c["by_interview"].items())
            parts.append(
                f'<article class="category" id="cat-{_e(c["id"])}" data-name="{_e(c["name"].lower())}" '
                f'style="--c:{_e(c["color"])}"><h4><span class="swatch" style="background:{_e(c["color"])}"></span>'
                f'{_e(c["name"])}' + (f' <small>{_e(c["dimension"])}</small>' if c["dimension"] != dim["name"]
                                       and c["dimension"] else "") + "</h4>"
                + (f'<p class="def">{_e(c["definition"])}</p>' if c["definition"] else "")
                + f'<p class="meta">{plural(c["turns"], "turn")} in {plural(c["interviews"], "interview")}: '
                f'{_e(where)}<span class="shown"></span></p>')
            quotes = [_quote_html(ev, turns, c["color"]) for ev in c["evidence"]]
            parts.extend(quotes[:top])
            if len(quotes) > top:
                parts.append(f'<details class="more"><summary>{plural(len(quotes) - top, "more quote")}</summary>'
                             + "".join(quotes[top:]) + "</details>")
            parts.append("</article>")
        if absent:
            parts.append('<p class="notfound">Not found: ' + ", ".join(
                f'<span title="{_e(c["definition"])}">{_e(c["name"])}</span>' for c in absent) + ".</p>")
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def _heat(n: int, vmax: int) -> str:
    if not n:
        return ""
    frac = n / max(vmax, 1)
    fg = "#fff" if frac > 0.55 else "#1d2330"
    return f' style="background:{_shade(0.12 + 0.88 * frac)};color:{fg}"'


def _interviews_html(summary: Mapping[str, Any], iv_index: Mapping[str, int]) -> str:
    ivs = [r["interview"] for r in summary["interviews"]]
    found = [c for c in summary["categories"] if c["turns"]]
    vmax = max([n for c in found for n in c["by_interview"].values()] + [1])
    head = ("<tr><th>dimension</th><th>code</th>" + "".join(
        f'<th class="v"><a href="#{_iv_anchor(iv, iv_index)}">{_e(iv)}</a></th>' for iv in ivs)
        + "<th>turns</th><th>interviews</th></tr>")
    rows = []
    for c in sorted(found, key=lambda c: (c["group"], -c["turns"], c["name"])):
        cells = "".join(f'<td class="n" data-category="{_e(c["id"])}" data-interview="{_e(iv)}"'
                        f'{_heat(c["by_interview"].get(iv, 0), vmax)}>{c["by_interview"].get(iv, "")}</td>'
                        for iv in ivs)
        rows.append(f'<tr><td>{_e(c["group"])}</td><th><a href="#cat-{_e(c["id"])}">{_e(c["name"])}</a></th>{cells}'
                    f'<td class="n">{c["turns"]}</td><td class="n">{c["interviews"]}</td></tr>')
    per = "".join(f'<tr><td>{_e(r["interview"])}</td><td class="n">{r["turns"]}</td>'
                  f'<td class="n">{r["interviewee_turns"]}</td><td class="n">{r["issue_turns"]}</td>'
                  f'<td class="n">{r["categories"]}</td><td class="n">{r["mitigation_turns"]}</td></tr>'
                  for r in summary["interviews"])
    absent = [c["name"] for c in summary["categories"] if not c["turns"]]
    return ('<section id="interviews"><h2>Codes by interview</h2>'
            "<p>Turns coded with each code in each interview (every code found; click a column to sort).</p>"
            f'<div class="scroll"><table class="heat sortable codes-by-interview"><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>'
            + (f'<p class="notfound">In no interview: {_e(", ".join(absent))}.</p>' if absent else "")
            + '<table class="sortable interviews"><thead><tr><th>interview</th><th>turns</th><th>interviewee turns</th>'
            "<th>turns with an issue code</th><th>codes</th><th>mitigation turns</th></tr></thead>"
            f"<tbody>{per}</tbody></table></section>")


def _cooccurrence_html(summary: Mapping[str, Any]) -> str:
    co = summary["cooccurrence"]
    ids = co["categories"]
    if len(ids) < 2:
        return ('<section id="cooccurrence"><h2>Codes that occur together</h2>'
                "<p>Fewer than two codes were found, so no code occurs with another.</p>"
                '<table class="cooc"><tbody></tbody></table></section>')
    names = summary["names"]
    turns = {c["id"]: c["turns"] for c in summary["categories"]}
    vmax = max([n for row in co["pairs"].values() for n in row.values()] + [1])
    head = "<tr><th></th>" + "".join(f'<th class="v">{_e(names.get(b, b))}</th>' for b in ids) + "</tr>"
    rows = []
    for a in ids:
        cells = []
        for b in ids:
            if a == b:
                cells.append(f'<td class="n diag" title="{_e(names.get(a, a))}: {plural(turns[a], "turn")} in all">'
                             f"{turns[a]}</td>")
                continue
            n = co["pairs"].get(a, {}).get(b, 0)
            title = f"{names.get(a, a)} and {names.get(b, b)}: {plural(n, 'turn')} coded with both"
            cells.append(f'<td class="n" data-pair="{_e(a)}|{_e(b)}" data-turns="{n}" title="{_e(title)}"'
                         f'{_heat(n, vmax)}>{n or ""}</td>')
        rows.append(f'<tr><th>{_e(names.get(a, a))}</th>{"".join(cells)}</tr>')
    pairs = sorted({(min(a, b), max(a, b)): n for a, r in co["pairs"].items() for b, n in r.items()}.items(),
                   key=lambda kv: (-kv[1], kv[0]))[:5]
    top = "; ".join(f"{names.get(a, a)} + {names.get(b, b)} ({plural(n, 'turn')})" for (a, b), n in pairs)
    return ('<section id="cooccurrence"><h2>Codes that occur together</h2>'
            "<p>Turns coded with both the row's and the column's code (the grey diagonal: all turns of the code)."
            + (f" Most frequent pairs: {_e(top)}." if top else " No turn has two codes.") + "</p>"
            f'<div class="scroll"><table class="cooc heat"><thead>{head}</thead><tbody>{"".join(rows)}</tbody>'
            "</table></div></section>")


def _matrix_html(summary: Mapping[str, Any]) -> str:
    phases = summary["phases"]
    found = [r for r in summary["matrix"] if r["turns"]]
    vmax = max([r["cells"][c["id"]]["turns"] for r in found for c in phases] + [1])
    head = "<tr><th>code</th>" + "".join(f"<th>{_e(c['name'])}</th>" for c in phases) + \
        "<th>turns</th><th>interviews</th></tr>"
    rows = []
    for r in sorted(found, key=lambda r: (-r["turns"], r["name"])):
        cells = [f'<th data-category="{_e(r["category"])}">{_e(r["name"])}</th>']
        for c in phases:
            v = r["cells"][c["id"]]
            title = f"{r['name']}, {c['name']}: {plural(v['turns'], 'turn')} in {plural(v['interviews'], 'interview')}"
            cells.append(f'<td class="n cell" data-category="{_e(r["category"])}" data-phase="{_e(c["id"])}" '
                         f'data-turns="{v["turns"]}" data-interviews="{v["interviews"]}" title="{_e(title)}"'
                         f'{_heat(v["turns"], vmax)}>{v["turns"] or ""}</td>')
        cells.append(f'<td class="n" data-total-turns="{r["turns"]}">{r["turns"]}</td>'
                     f'<td class="n" data-total-interviews="{r["interviews"]}">{r["interviews"]}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ('<section id="matrix"><h2>Codes by lifecycle phase</h2>'
            "<p>Turns coded with each issue and each lifecycle phase (hover a cell for the number of interviews; "
            f"{_e(NO_PHASE)}: the turn got no phase).</p>"
            f'<table class="matrix heat sortable"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></section>')


def _transcripts_html(summary: Mapping[str, Any], iv_index: Mapping[str, int]) -> str:
    colors, names = summary["colors"], summary["names"]
    parts = ['<section id="transcripts"><h2>Transcripts</h2>'
             "<p>Every interview in full, with its codes in the right margin (the coloured stripes; grey: lifecycle "
             "phases) and each code's evidence highlighted in the text.</p>"]
    per = {r["interview"]: r for r in summary["interviews"]}
    for tr in summary.get("transcripts", []):
        iv = tr["interview"]
        r = per.get(iv, {})
        parts.append(f'<section class="transcript" id="{_iv_anchor(iv, iv_index)}" data-interview="{_e(iv)}">'
                     f'<h3>{_e(iv)} <small>{plural(len(tr["turns"]), "turn")}, '
                     f'{plural(r.get("issue_turns", 0), "turn")} with an issue code</small></h3>')
        for t in tr["turns"]:
            codes = t.get("codes") or []
            chips = [f'<span class="chip" style="--c:{_e(colors.get(c["id"], "#888"))}" data-score="{c["score"]:.4f}" '
                     f'title="confidence {c["score"]:.2f}">{_e(names.get(c["id"], c["id"]))} {c["score"]:.2f}</span>'
                     for c in codes]
            if t.get("mitigation") is not None:
                chips.append(f'<span class="chip" style="--c:{_e(colors.get("mitigation", "#888"))}" '
                             f'data-score="{t["mitigation"]:.4f}">Mitigation {t["mitigation"]:.2f}</span>')
            if codes:
                chips += [f'<span class="chip phase" data-score="{ph["score"]:.4f}">'
                          f'{_e(names.get(ph["id"], ph["id"]))}</span>' for ph in t.get("phases") or []]
            text = _highlight(t["text"], [(c.get("evidence") or "", colors.get(c["id"], "")) for c in codes])
            cls = "turn " + ("interviewee" if t["speaker"] == "interviewee" else "interviewer") + \
                (" coded" if codes else "")
            parts.append(f'<div class="{cls}" id="{_anchor(t["id"])}"><div class="body"><span class="num">'
                         f'{_e(t["turn"])}</span><span class="who">{_e(t["who"])}:</span> {text}</div>'
                         f'<div class="margin">{"".join(chips)}</div></div>')
        parts.append("</section>")
    parts.append("</section>")
    return "\n".join(parts)


def _mitigations_html(summary: Mapping[str, Any], turns: Mapping[str, Mapping[str, Any]]) -> str:
    mits = summary["mitigations"]
    if not mits:
        return ('<section id="mitigations"><h2>Mitigations</h2>'
                "<p>No turn was coded as describing how an issue was fixed or avoided.</p></section>")
    names = summary["names"]
    by_code: Counter = Counter()
    for m in mits:
        by_code.update(m["categories"] or ["(no issue code)"])
    rows = "".join(f"<tr><td>{_e(names.get(c, c))}</td><td class=\"n\">{n}</td></tr>"
                   for c, n in sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0])))
    items = "".join(
        f'<li data-score="{m["score"]:.4f}" data-interview="{_e(m["interview"])}"><a href="#{_anchor(m["id"])}">'
        f'{_e(m["interview"])}, turn {_e(m["turn"])}</a> <span class="meta">confidence {m["score"]:.2f}'
        + (f' \u00b7 {_e(", ".join(names.get(c, c) for c in m["categories"]))}' if m["categories"] else "")
        + f'</span>: {_e(m["quote"])}</li>' for m in mits)
    return ('<section id="mitigations"><h2>Mitigations</h2>'
            f"<p>{plural(len(mits), 'turn')} describe how an issue was fixed or avoided. By the issue code of the "
            f"same turn:</p><table class=\"sortable\"><thead><tr><th>issue code</th><th>mitigation turns</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
            f"<details><summary>All {plural(len(mits), 'mitigation turn')}</summary><ul>{items}</ul></details>"
            "</section>")


def _similar_words(sim: float) -> str:
    if sim >= 0.5:
        return "close to"
    if sim >= 0.35:
        return "somewhat like"
    return "unlike"


def proposal_view(p: Mapping[str, Any], names_by_id: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A proposal in plain words: title, what it is, where it was heard, how it relates to the catalog."""
    title = str(p.get("name") or p.get("label") or p.get("title") or "Unnamed proposal")
    size, n_iv = p.get("size"), p.get("n_interviews")
    said = ""
    if isinstance(size, int):
        said = f"Heard in {plural(size, 'turn')}" + (f" from {plural(n_iv, 'interview')}" if isinstance(n_iv, int)
                                                      else "") + "."
    words = [str(k) for k in (p.get("keywords") or [])][:6]
    near = [n for n in (p.get("nearest") or []) if isinstance(n, Mapping)]
    relation = ""
    if near:
        sim = float(near[0].get("similarity") or 0.0)
        nm = str(near[0].get("name") or near[0].get("id") or "")
        relation = (f"It is {_similar_words(sim)} the existing code \u201c{nm}\u201d"
                    + (": maybe a variant of it." if sim >= 0.5 else
                       ", so possibly a new code." if sim < 0.35 else "."))
    parent = str(p.get("parent") or "")
    kind = str(p.get("kind") or "")
    return {"title": title, "definition": str(p.get("definition") or p.get("description") or ""), "said": said,
            "words": words, "relation": relation, "theme": p.get("level") == "theme",
            "parent": (names_by_id or {}).get(parent, ""), "kind": kind, "note": str(p.get("note") or ""),
            "quotes": [q for q in (p.get("quotes") or []) if isinstance(q, Mapping)]}


def _proposals_html(summary: Mapping[str, Any], turns: Mapping[str, Mapping[str, Any]]) -> str:
    props = summary["proposals"]
    if not props:
        return ('<section id="proposals"><h2>Possible new codes</h2>'
                "<p>Discovery found no group of uncoded turns that could become a new code.</p></section>")
    names = {str(p.get("id")): proposal_view(p)["title"] for p in props if p.get("id")}
    main, aside = [], []
    shown: set[str] = set()
    for p in props:
        v = proposal_view(p, names)
        # a theme and its groups share turns: show each quote once, under the first proposal
        fresh = [q for q in v["quotes"] if str(q.get("id", "")) not in shown] or v["quotes"][:1]
        shown.update(str(q.get("id", "")) for q in fresh[:3])
        quotes = "".join(_quote_html({"id": q.get("id", ""), "interview": q.get("interview", ""),
                                      "turn": q.get("turn", ""), "quote": _quote(str(q.get("text", ""))),
                                      "text": str(q.get("text", "")), "score": None}, turns) for q in fresh[:3])
        tags = ("<span class=\"tag\">broad theme</span>" if v["theme"] else "") + \
            (f'<span class="tag">part of \u201c{_e(v["parent"])}\u201d</span>' if v["parent"] else "")
        block = (f'<div class="prop"><h4>{_e(v["title"])}{tags}</h4>'
                 + (f"<p>{_e(v['definition'])}</p>" if v["definition"] else "")
                 + f"<p>{_e(v['said'])} " + (f"Distinctive words: {_e(', '.join(v['words']))}. " if v["words"] else "")
                 + f"{_e(v['relation'])}</p>" + (f'<p class="meta">{_e(v["note"])}</p>' if v["note"] else "")
                 + quotes + "</div>")
        (aside if v["kind"] else main).append(block)
    out = ['<section id="proposals"><h2>Possible new codes</h2>'
           "<p>Groups of interviewee turns that no code covers, found by clustering what was said. Each is a "
           "suggestion for the catalog: accept or reject it with <code>extractor discover-review</code>.</p>"]
    out += main or ["<p>None beyond small talk.</p>"]
    if aside:
        out.append(f"<details><summary>Set aside as small talk or introductions ({len(aside)})</summary>"
                   + "".join(aside) + "</details>")
    out.append("</section>")
    return "\n".join(out)


def _turn_index(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for tr in summary.get("transcripts", []) for t in tr["turns"]}


def render_html(summary: Mapping[str, Any], figures: Mapping[str, str] | None = None) -> str:
    """The report as one self-contained HTML page: inline CSS and script, no external
    requests, every section readable with scripts off (the filters then stay hidden)."""
    del figures  # the page draws its charts as tables; the SVG figures are separate files
    turns = _turn_index(summary)
    iv_index = {r["interview"]: i for i, r in enumerate(summary["interviews"], 1)}
    parts = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>Machine-coded quality issues: report</title>", f"<style>{_CSS}</style></head><body>",
             _filters_html(summary), "<main>",
             "<h1>Quality issues in ML systems: machine-coded report</h1>",
             '<nav class="toc">' + "".join(f'<a href="#{sid}">{_e(t)}</a>' for sid, t in SECTIONS) + "</nav>",
             _about_html(summary), _privacy_html(summary), _summary_html(summary),
             _categories_html(summary, turns), _interviews_html(summary, iv_index), _cooccurrence_html(summary),
             _matrix_html(summary), _transcripts_html(summary, iv_index), _mitigations_html(summary, turns),
             _proposals_html(summary, turns), f"</main><script>{_JS}</script></body></html>\n"]
    return "\n".join(parts)


# --- Markdown ---------------------------------------------------------------

# With "[" and "]" escaped no link or image can start, so "(", ")" and "!" stay readable.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#+|~])")


def md_escape(text: Any) -> str:
    """Input text made inert in Markdown: HTML special characters as entities (no raw HTML
    passes through), Markdown punctuation backslash-escaped, line breaks as spaces."""
    s = " ".join(str(text).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    # a leading "-" or "1." would start a list when the text begins a line
    return re.sub(r"^(\d+)\.", r"\1\\.", re.sub(r"^-", r"\\-", s))


def render_markdown(summary: Mapping[str, Any], figure_paths: Mapping[str, str] | None = None) -> str:
    """The same report in Markdown, in the same order (figures linked as files)."""
    m, tot = summary["model"], summary["totals"]
    mf, hf = m.get("model_f1") or {}, m.get("human_f1") or {}
    names = summary["names"]
    out = ["# Quality issues in ML systems: machine-coded report", "", "## What these codes are", "",
           f"**Every code in this report was assigned by a machine-learning model, not by a person.** "
           f"Model: {md_escape(m.get('name') or 'unnamed')}; catalog of codes: {md_escape(summary['catalog'])}.", "",
           "How often the model's codes match a human coder's, beside how often two human coders match each other "
           "(F1 per turn: 0 = never, 1 = always):", "",
           "| | model vs human | human vs human |", "| --- | ---: | ---: |",
           f"| Issue categories | {_f(mf.get('categories'))} | {_f(hf.get('categories'))} |",
           f"| Lifecycle phases | {_f(mf.get('phases'))} | {_f(hf.get('phases'))} |", "",
           (f"Model figures: {md_escape(m['model_source'])}. " if m.get("model_source")
            else "The model card records no measured F1 for this model. ")
           + f"Human figures: {md_escape(m.get('human_source', ''))}.", "",
           "Read each code as a suggestion to check against its quote. Each code carries the model's confidence "
           "(0 to 1); a code is given when the confidence passes that code's threshold.", ""]
    out += ["## Privacy check", ""]
    if summary["privacy"]:
        out.append(f"**Warning:** {plural(len(summary['privacy']), 'likely piece', 'likely pieces')} of unredacted "
                   "personal data in the transcripts; redact them and run again before sharing any output:")
        out.append("")
        for f in summary["privacy"]:
            out.append(f"- {md_escape(f.get('file', ''))}, line {md_escape(f.get('line', ''))}, "
                       f"{md_escape(f.get('kind', ''))}: {md_escape(f.get('text', ''))}")
    else:
        out.append("No likely personal data found.")
    share = f" ({100 * tot['issue_turns'] / tot['interviewee_turns']:.0f}%)" if tot["interviewee_turns"] else ""
    out += ["", "## At a glance", "",
            f"{plural(tot['interviews'], 'interview')}, {plural(tot['turns'], 'turn')}, {tot['interviewee_turns']} "
            f"by interviewees; {plural(tot['issue_turns'], 'turn')}{share} carry at least one issue code "
            f"({plural(tot['categories_found'], 'code')} of {tot['categories']}); "
            f"{plural(tot['mitigation_turns'], 'turn')} describe a mitigation; "
            f"{plural(tot['proposals'], 'possible new code')}.", ""]
    if figure_paths:
        out += [f"![{md_escape(k)}]({v})" for k, v in figure_paths.items()] + [""]
    cats = {c["id"]: c for c in summary["categories"]}
    turns = _turn_index(summary)
    out += ["## Codes by quality dimension", ""]
    for dim in summary["dimensions"]:
        members = [cats[c] for c in dim["categories"]]
        present = sorted((c for c in members if c["turns"]), key=lambda c: (-c["turns"], c["name"]))
        out += [f"### {md_escape(dim['name'])}", ""]
        for c in present:
            out += [f"#### {md_escape(c['name'])}", ""]
            if c["definition"]:
                out += [md_escape(c["definition"]), ""]
            where = ", ".join(f"{iv} ({n})" for iv, n in c["by_interview"].items())
            out += [f"{plural(c['turns'], 'turn')} in {plural(c['interviews'], 'interview')}: {md_escape(where)}.", ""]
            for ev in c["evidence"]:
                q = (turns.get(ev["id"]) or {}).get("question", "")
                out += [f"> {md_escape(ev['quote'])}", ">",
                        f"> — {md_escape(ev['interview'])}, turn {ev['turn']}, confidence {ev['score']:.2f}"
                        + (f"; question: {md_escape(_quote(q, 160))}" if q else ""), ""]
        absent = [c["name"] for c in members if not c["turns"]]
        if absent:
            out += [f"Not found: {md_escape(', '.join(absent))}.", ""]
    ivs = [r["interview"] for r in summary["interviews"]]
    found = [c for c in summary["categories"] if c["turns"]]
    out += ["## Codes by interview", "", "| code | " + " | ".join(md_escape(iv) for iv in ivs) + " | turns |",
            "| --- |" + " ---: |" * (len(ivs) + 1)]
    for c in sorted(found, key=lambda c: (c["group"], -c["turns"], c["name"])):
        out.append(f"| {md_escape(c['name'])} | " + " | ".join(str(c["by_interview"].get(iv, "")) for iv in ivs)
                   + f" | {c['turns']} |")
    co = summary["cooccurrence"]
    out += ["", "## Codes that occur together", ""]
    if len(co["categories"]) >= 2:
        out += ["Turns coded with both codes (diagonal: all turns of the code).", "",
                "| | " + " | ".join(md_escape(names.get(b, b)) for b in co["categories"]) + " |",
                "| --- |" + " ---: |" * len(co["categories"])]
        for a in co["categories"]:
            out.append(f"| {md_escape(names.get(a, a))} | " + " | ".join(
                (f"*{cats[a]['turns']}*" if a == b else str(co["pairs"].get(a, {}).get(b, "") or ""))
                for b in co["categories"]) + " |")
    else:
        out.append("Fewer than two codes were found.")
    phases = summary["phases"]
    out += ["", "## Codes by lifecycle phase", "", "Turns per code and phase.", "",
            "| code | " + " | ".join(md_escape(c["name"]) for c in phases) + " | turns | interviews |",
            "| --- |" + " ---: |" * (len(phases) + 2)]
    for r in sorted((r for r in summary["matrix"] if r["turns"]), key=lambda r: (-r["turns"], r["name"])):
        out.append(f"| {md_escape(r['name'])} | " + " | ".join(str(r["cells"][c["id"]]["turns"] or "")
                                                              for c in phases)
                   + f" | {r['turns']} | {r['interviews']} |")
    out += ["", "## Transcripts", ""]
    for tr in summary["transcripts"]:
        out += [f"### {md_escape(tr['interview'])}", ""]
        for t in tr["turns"]:
            codes = [f"{names.get(c['id'], c['id'])} {c['score']:.2f}" for c in t.get("codes") or []]
            if t.get("mitigation") is not None:
                codes.append(f"Mitigation {t['mitigation']:.2f}")
            out += [f"{t['turn']}. **{md_escape(t['who'])}:** {md_escape(t['text'])}"
                    + (f" — *{md_escape('; '.join(codes))}*" if codes else ""), ""]
    out += ["## Mitigations", ""]
    if summary["mitigations"]:
        out.append(f"{plural(len(summary['mitigations']), 'turn')} describe how an issue was fixed or avoided:")
        out.append("")
        for mt in summary["mitigations"]:
            cs = ", ".join(names.get(c, c) for c in mt["categories"])
            out.append(f"- {md_escape(mt['interview'])}, turn {mt['turn']} (confidence {mt['score']:.2f}"
                       + (f"; {md_escape(cs)}" if cs else "") + f"): {md_escape(mt['quote'])}")
    else:
        out.append("None.")
    out += ["", "## Possible new codes", ""]
    props = summary["proposals"]
    if props:
        titles = {str(p.get("id")): proposal_view(p)["title"] for p in props if p.get("id")}
        for p in props:
            v = proposal_view(p, titles)
            extra = [x for x in ("broad theme" if v["theme"] else "",
                                 f"part of \u201c{v['parent']}\u201d" if v["parent"] else "",
                                 "set aside as small talk" if v["kind"] else "") if x]
            out.append(f"- **{md_escape(v['title'])}**" + (f" ({md_escape('; '.join(extra))})" if extra else "")
                       + f": {md_escape(v['said'])}"
                       + (f" Distinctive words: {md_escape(', '.join(v['words']))}." if v["words"] else "")
                       + (f" {md_escape(v['relation'])}" if v["relation"] else ""))
    else:
        out.append("None.")
    return "\n".join(out) + "\n"


# --- CSV --------------------------------------------------------------------

CSV_FIELDS = ("interview", "turn", "id", "category", "category_name", "score", "phases", "mitigation",
              "start", "end", "file", "evidence", "text")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run: a leading ``= + - @``, tab or CR gets a ``'``
    in front (OWASP's advice for CSV injection). Numbers pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def coded_segments_csv(predictions: Sequence[Prediction], catalog: Catalog,
                       turns: Sequence[Turn] = ()) -> str:
    """One row per (turn, predicted category): the coded segments, with character ranges when known."""
    src = {t.id: t.source for t in turns if t.source}
    buf = io.StringIO()
    # CRLF rows (RFC 4180): a lone CR or LF inside a cell then forces quoting, so it cannot split a row
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_FIELDS)
    for p in predictions:
        s = src.get(p.id) or {}
        for c in p.categories:
            w.writerow([csv_cell(v) for v in (
                p.interview, p.turn, p.id, c, catalog[c].name if c in catalog else c,
                f"{float(p.scores.get(c, 0.0)):.4f}", ";".join(p.phases), int(p.mitigation),
                s.get("start", ""), s.get("end", ""), str(s.get("file", "")), p.evidence.get(c, ""), p.text)])
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
    # the figures only: the turns' text is in turns.jsonl and predictions.jsonl already
    figures_only = {k: v for k, v in summary.items() if k != "transcripts"}
    for c in figures_only["categories"]:
        c["evidence"] = [{k: v for k, v in ev.items() if k != "evidence"} for ev in c["evidence"]]
    write_json(paths["summary"], json.loads(json.dumps(figures_only, default=str)))
    return paths

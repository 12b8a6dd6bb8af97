"""``report.md``: the report in Markdown, in the same order as the HTML page (figures linked as files).

Every text from input goes through :func:`md_escape`, so no HTML, link, image or emphasis
can be injected through a transcript, a name or a proposal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from extractor.report.words import fmt_f1, plural, proposal_titles, proposal_view, shorten

# With "[" and "]" escaped no link or image can start, so "(", ")" and "!" stay readable.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#+|~])")
UNTRAINED = "new entry, not yet trained"


def md_escape(text: Any) -> str:
    """Input text made inert in Markdown: HTML special characters as entities (no raw HTML
    passes through), Markdown punctuation backslash-escaped, line breaks as spaces."""
    s = " ".join(str(text).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    # a leading "-" or "1." would start a list when the text begins a line
    return re.sub(r"^(\d+)\.", r"\1\\.", re.sub(r"^-", r"\\-", s))


def reviewed_md(mark: Mapping[str, str] | None) -> str:
    """``reviewed by Ana, 2026-12-03`` (escaped), or "" for a model's code."""
    if not mark:
        return ""
    when = str(mark.get("at") or "")[:10]
    return md_escape(f"reviewed by {mark.get('by')}" + (f", {when}" if when else ""))


def who_coded(summary: Mapping[str, Any]) -> str:
    """The report's first sentence: a machine's codes, or how many a person reviewed."""
    m, rev = summary["model"], summary.get("reviewed")
    model = f"Model: {md_escape(m.get('name') or 'unnamed')}; catalog of codes: {md_escape(summary['catalog'])}."
    if not rev:
        return f"**Every code in this report was assigned by a machine-learning model, not by a person.** {model}"
    return (f"**{rev['codes']} of {rev['of_codes']} codes reviewed** by a person "
            f"({md_escape(', '.join(rev['reviewers']))}; {plural(rev['turns'], 'turn')} reviewed); the other codes "
            f"were assigned by a machine-learning model. {model}")


def about_md(summary: Mapping[str, Any]) -> list[str]:
    m = summary["model"]
    mf, hf = m.get("model_f1") or {}, m.get("human_f1") or {}
    return ["# Quality issues in ML systems: machine-coded report"
            + (", with reviewed codes" if summary.get("reviewed") else ""), "", "## What these codes are", "",
            who_coded(summary), "",
            "How often the model's codes match a human coder's, beside how often two human coders match each other "
            "(F1 per turn: 0 = never, 1 = always):", "",
            "| | model vs human | human vs human |", "| --- | ---: | ---: |",
            f"| Issue categories | {fmt_f1(mf.get('categories'))} | {fmt_f1(hf.get('categories'))} |",
            f"| Lifecycle phases | {fmt_f1(mf.get('phases'))} | {fmt_f1(hf.get('phases'))} |", "",
            (f"Model figures: {md_escape(m['model_source'])}. " if m.get("model_source")
             else "The model card records no measured F1 for this model. ")
            + f"Human figures: {md_escape(m.get('human_source', ''))}.", "",
            "Read each code as a suggestion to check against its quote. Each code carries the model's confidence "
            "(0 to 1); a code is given when the confidence passes that code's threshold."
            + (" A reviewed code is a person's coding, marked with who reviewed it and when."
               if summary.get("reviewed") else ""), ""]


def privacy_md(summary: Mapping[str, Any]) -> list[str]:
    out = ["## Privacy check", ""]
    if not summary["privacy"]:
        return out + ["No likely personal data found."]
    out += [f"**Warning:** {plural(len(summary['privacy']), 'likely piece', 'likely pieces')} of unredacted "
            "personal data in the transcripts; redact them and run again before sharing any output:", ""]
    for f in summary["privacy"]:
        out.append(f"- {md_escape(f.get('file', ''))}, line {md_escape(f.get('line', ''))}, "
                   f"{md_escape(f.get('kind', ''))}: {md_escape(f.get('text', ''))}")
    return out


def glance_md(summary: Mapping[str, Any], figure_paths: Mapping[str, str] | None) -> list[str]:
    tot = summary["totals"]
    share = f" ({100 * tot['issue_turns'] / tot['interviewee_turns']:.0f}%)" if tot["interviewee_turns"] else ""
    out = ["", "## At a glance", "",
           f"{plural(tot['interviews'], 'interview')}, {plural(tot['turns'], 'turn')}, {tot['interviewee_turns']} "
           f"by interviewees; {plural(tot['issue_turns'], 'turn')}{share} carry at least one issue code "
           f"({plural(tot['categories_found'], 'code')} of {tot['categories']}); "
           f"{plural(tot['mitigation_turns'], 'turn')} describe a mitigation; "
           f"{plural(tot['proposals'], 'possible new code')}.", ""]
    if figure_paths:
        out += [f"![{md_escape(k)}]({v})" for k, v in figure_paths.items()] + [""]
    return out


def quote_md(ev: Mapping[str, Any], question: str) -> list[str]:
    how = reviewed_md(ev.get("reviewed")) or f"confidence {ev['score']:.2f}"
    return [f"> {md_escape(ev['quote'])}", ">",
            f"> — {md_escape(ev['interview'])}, turn {ev['turn']}, {how}"
            + (f", {UNTRAINED}" if ev.get("untrained") else "")
            + (f"; question: {md_escape(shorten(question, 160))}" if question else ""), ""]


def categories_md(summary: Mapping[str, Any]) -> list[str]:
    cats = {c["id"]: c for c in summary["categories"]}
    turns = {t["id"]: t for tr in summary.get("transcripts", []) for t in tr["turns"]}
    out = ["## Codes by quality dimension", ""]
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
                out += quote_md(ev, (turns.get(ev["id"]) or {}).get("question", ""))
        absent = [c["name"] for c in members if not c["turns"]]
        if absent:
            out += [f"Not found: {md_escape(', '.join(absent))}.", ""]
    return out


def tables_md(summary: Mapping[str, Any]) -> list[str]:
    """Codes by interview, codes that occur together, codes by lifecycle phase."""
    names, cats = summary["names"], {c["id"]: c for c in summary["categories"]}
    ivs = [r["interview"] for r in summary["interviews"]]
    found = [c for c in summary["categories"] if c["turns"]]
    out = ["## Codes by interview", "", "| code | " + " | ".join(md_escape(iv) for iv in ivs) + " | turns |",
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
    return out


def turn_codes_md(t: Mapping[str, Any], names: Mapping[str, str]) -> list[str]:
    """A transcript turn's codes: ``Drift 0.72``, or ``Drift`` on a reviewed turn (said once)."""
    rev = t.get("reviewed")
    codes = [f"{names.get(c['id'], c['id'])}" + ("" if rev else f" {c['score']:.2f}")
             + (f" ({UNTRAINED})" if c.get("untrained") else "") for c in t.get("codes") or []]
    if t.get("mitigation") is not None:
        codes.append("Mitigation" + ("" if rev else f" {t['mitigation']:.2f}"))
    if rev:
        when = str(rev.get("at") or "")[:10]
        codes.append(f"reviewed by {rev.get('by')}" + (f", {when}" if when else ""))
    return codes


def transcripts_md(summary: Mapping[str, Any]) -> list[str]:
    names = summary["names"]
    out = ["", "## Transcripts", ""]
    for tr in summary["transcripts"]:
        out += [f"### {md_escape(tr['interview'])}", ""]
        for t in tr["turns"]:
            codes = turn_codes_md(t, names)
            out += [f"{t['turn']}. **{md_escape(t['who'])}:** {md_escape(t['text'])}"
                    + (f" — *{md_escape('; '.join(codes))}*" if codes else ""), ""]
    return out


def mitigations_md(summary: Mapping[str, Any]) -> list[str]:
    names = summary["names"]
    out = ["## Mitigations", ""]
    if not summary["mitigations"]:
        return out + ["None."]
    out += [f"{plural(len(summary['mitigations']), 'turn')} describe how an issue was fixed or avoided:", ""]
    for mt in summary["mitigations"]:
        cs = ", ".join(names.get(c, c) for c in mt["categories"])
        how = reviewed_md(mt.get("reviewed")) or f"confidence {mt['score']:.2f}"
        out.append(f"- {md_escape(mt['interview'])}, turn {mt['turn']} ({how}"
                   + (f"; {md_escape(cs)}" if cs else "") + f"): {md_escape(mt['quote'])}")
    return out


def proposals_md(summary: Mapping[str, Any]) -> list[str]:
    out = ["", "## Possible new codes", ""]
    props = summary["proposals"]
    if not props:
        return out + ["None."]
    titles = proposal_titles(props)
    for p in props:
        v = proposal_view(p, titles)
        extra = [x for x in ("broad theme" if v["theme"] else "",
                             f"part of \u201c{v['parent']}\u201d" if v["parent"] else "",
                             "set aside as small talk" if v["kind"] else "") if x]
        out.append(f"- **{md_escape(v['title'])}**" + (f" ({md_escape('; '.join(extra))})" if extra else "")
                   + f": {md_escape(v['said'])}"
                   + (f" Distinctive words: {md_escape(', '.join(v['words']))}." if v["words"] else "")
                   + (f" {md_escape(v['relation'])}" if v["relation"] else ""))
    return out


def render_markdown(summary: Mapping[str, Any], figure_paths: Mapping[str, str] | None = None) -> str:
    """The same report in Markdown, in the same order (figures linked as files)."""
    out = [*about_md(summary), *privacy_md(summary), *glance_md(summary, figure_paths), *categories_md(summary),
           *tables_md(summary), *transcripts_md(summary), *mitigations_md(summary), *proposals_md(summary)]
    return "\n".join(out) + "\n"

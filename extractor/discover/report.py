"""The Markdown report of a discovery run, in plain words."""

from __future__ import annotations

from extractor.discover.config import DiscoveryResult
from extractor.proposals import Proposal


def summary_lines(result: DiscoveryResult) -> list[str]:
    """What was looked at: how many turns each filter kept or set aside."""
    from extractor.report import md_escape, plural

    s = result.stats
    lines = [
        f"Of {plural(s.get('turns', 0), 'interviewee turn')} from {plural(s.get('interviews', 0), 'interview')}, "
        f"{s.get('substantive', 0)} say something substantial; {s.get('background', 0)} of those are about the "
        f"speaker's background, {s.get('not_a_problem', 0)} describe no problem, "
        f"{s.get('matched_by_classifier', 0)} already fit a code and {s.get('matched_zero_shot', 0)} resemble a "
        f"code's description. The problem talk of the other {s.get('unmatched', 0)} was grouped by what it says "
        f"into {plural(len(result.proposals), 'proposal')}.", ""]
    for w in result.warnings:
        lines += [f"> **Warning:** {md_escape(w)}", ""]
    if result.message:
        lines += [f"> **No proposals:** {md_escape(result.message)}", ""]
    return lines


def table_lines(proposals: list[Proposal]) -> list[str]:
    from extractor.report import md_escape, plural, proposal_view

    titles = {p.id: p.name for p in proposals}
    lines = ["| # | Possible new code | Heard in | Closest existing code | Distinctive words |",
             "|---|---|---|---|---|"]
    for i, p in enumerate(proposals, 1):
        v = proposal_view(p.to_dict(), titles)
        near = p.nearest_entry
        note = " (set aside: " + p.kind + ")" if p.kind else (" (broad theme)" if v["theme"] else "")
        lines.append(f"| {i} | {md_escape(p.name)}{note} | {plural(p.size, 'turn')}, "
                     f"{plural(p.n_interviews, 'interview')} | {md_escape(near['name']) if near else '-'} | "
                     f"{md_escape(', '.join(v['words'][:5]))} |")
    return lines + [""]


def section_lines(i: int, p: Proposal, titles: dict[str, str], shown: set[str]) -> list[str]:
    from extractor.report import md_escape, proposal_view

    v = proposal_view(p.to_dict(), titles)
    lines = [f"## {i}. {md_escape(p.name)}", ""]
    if p.kind:
        lines += [f"*Set aside as {md_escape(p.kind)}: probably not a quality issue.*", ""]
    if v["theme"]:
        lines += ["*A broad theme that groups several of the proposals below.*", ""]
    if v["parent"]:
        lines += [f"*Part of the broad theme \u201c{md_escape(v['parent'])}\u201d.*", ""]
    if p.definition:
        lines += [f"Draft definition: {md_escape(p.definition)}", ""]
    lines.append(f"{md_escape(v['said'])} Interviews: {md_escape(', '.join(p.interviews))}.")
    if v["words"]:
        lines.append(f"Distinctive words: {md_escape(', '.join(v['words']))}.")
    if v["relation"]:
        lines.append(md_escape(v["relation"]))
    if p.why_not:
        lines.append(md_escape(p.why_not))
    lines += ["", "Quotes:", ""]
    fresh = [q for q in p.quotes if q.id not in shown] or list(p.quotes[:1])  # once each, under the theme
    shown.update(q.id for q in fresh)
    for q in fresh:
        lines += [f"> {md_escape(q.text)}", ">", f"> — {md_escape(q.interview)}, turn {q.turn}", ""]
    return lines


def render_report(result: DiscoveryResult, *, title: str = "Possible new codes", source: str = "") -> str:
    """A Markdown report: what was looked at, a table of proposals, then each proposal with
    its draft definition, where it was heard, how it relates to the catalog, and quotes."""
    from extractor.report import md_escape

    lines = [f"# {md_escape(title)}", ""]
    if source:
        lines += [f"Input: {md_escape(source)}", ""]
    lines += summary_lines(result)
    if not result.proposals:
        return "\n".join(lines) + "\n"
    lines += table_lines(result.proposals)
    titles = {p.id: p.name for p in result.proposals}
    shown: set[str] = set()
    for i, p in enumerate(result.proposals, 1):
        lines += section_lines(i, p, titles, shown)
    lines.append("To accept or reject a proposal, set `\"decision\": \"accept\"` or `\"reject\"` on its line of the "
                 "proposals JSONL (optionally edit `name` and `definition`), then run `extractor discover-review FILE`;"
                 " or review them in the browser with `extractor review serve --proposals FILE`.")
    return "\n".join(lines) + "\n"

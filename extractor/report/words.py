"""Plain words shared by every renderer: counts, short quotes, proposals described for people."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_QUOTE = 300


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 turn``, ``2 turns``, ``1 interview``: counts in plain words."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def shorten(text: str, n: int = MAX_QUOTE) -> str:
    """``text`` on one line, cut at a word boundary to at most ``n`` characters (with an ellipsis)."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rsplit(" ", 1)[0].rstrip() + "\u2026"


def fmt_f1(x: float | None) -> str:
    """An F1 figure with two decimals, ``-`` when none was measured."""
    return "-" if x is None else f"{x:.2f}"


def similar_words(sim: float) -> str:
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
        relation = (f"It is {similar_words(sim)} the existing code \u201c{nm}\u201d"
                    + (": maybe a variant of it." if sim >= 0.5 else
                       ", so possibly a new code." if sim < 0.35 else "."))
    parent = str(p.get("parent") or "")
    kind = str(p.get("kind") or "")
    return {"title": title, "definition": str(p.get("definition") or p.get("description") or ""), "said": said,
            "words": words, "relation": relation, "theme": p.get("level") == "theme",
            "parent": (names_by_id or {}).get(parent, ""), "kind": kind, "note": str(p.get("note") or ""),
            "quotes": [q for q in (p.get("quotes") or []) if isinstance(q, Mapping)]}


def proposal_titles(props: Any) -> dict[str, str]:
    """Proposal id -> title, to name a proposal's parent theme."""
    return {str(p.get("id")): proposal_view(p)["title"] for p in props if p.get("id")}

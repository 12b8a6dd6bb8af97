"""Describing a group of passages as a proposal: quotes, nearest entry and why it is not that
entry, phases, and whether the group is introductions or small talk."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from extractor.catalog import Catalog, Entry
from extractor.discover.config import DiscoverConfig
from extractor.discover.naming import display_name, draft_definition, why_not_entry
from extractor.discover.passages import INTRODUCTION, PROCEDURE, Passage
from extractor.proposals import Proposal, Quote, proposal_id
from extractor.types import natural_key


@dataclass
class Pool:
    """The passages being clustered, with what describing a group needs."""

    passages: list[Passage]
    X: np.ndarray  # clustering vectors (passage + question), L2-normalised
    A: np.ndarray  # passage-only vectors, L2-normalised: centrality and naming
    entries: list[Entry]
    entry_vecs: np.ndarray
    catalog: Catalog

    @property
    def docs(self) -> list[str]:
        return [p.text for p in self.passages]

    def centroid(self, idx: np.ndarray) -> np.ndarray:
        c = self.A[idx].mean(axis=0)
        return c / (np.linalg.norm(c) or 1.0)


def set_aside_kind(texts: Sequence[str], positions: Sequence[float], config: DiscoverConfig) -> str:
    """``"introductions"``, ``"small talk"`` or ``""`` for a group of member passages:
    introductions when most come from the opening of their interview or say who the speaker
    is; small talk when most are greetings, thanks or talk about the interview itself."""
    n = max(len(texts), 1)
    early = sum(p <= config.intro_position for p in positions) / n
    intro = sum(bool(INTRODUCTION.search(t)) for t in texts) / n
    if early >= 0.6 or intro >= 0.6 or (early >= 0.4 and intro >= 0.4):
        return "introductions"
    if sum(bool(PROCEDURE.search(t)) for t in texts) / n >= 0.5:
        return "small talk"
    return ""


def pick_quotes(members: Sequence[Passage], sims: np.ndarray, config: DiscoverConfig) -> list[Quote]:
    """The most central passages, one per interview first (several voices), then the next
    most central; shortened to ``quote_chars``."""
    order = sorted(range(len(members)), key=lambda k: (-sims[k], members[k].id))
    picked: list[int] = []
    seen: set[str] = set()
    for k in order:
        if members[k].interview not in seen and len(picked) < config.n_quotes:
            picked.append(k)
            seen.add(members[k].interview)
    picked += [k for k in order if k not in picked][: max(0, min(config.n_quotes, len(members)) - len(picked))]
    picked.sort(key=lambda k: (-sims[k], members[k].id))
    quotes = []
    for k in picked:
        m, text = members[k], members[k].quote
        if len(text) > config.quote_chars:
            text = text[: config.quote_chars].rsplit(" ", 1)[0] + " …"
        quotes.append(Quote(interview=m.interview, turn=m.prediction.turn, id=m.id, text=text,
                            similarity=round(float(sims[k]), 4)))
    return quotes


def nearest_entries(pool: Pool, centroid: np.ndarray, k: int = 3) -> list[dict[str, Any]]:
    if not pool.entries:
        return []
    sims = pool.entry_vecs @ centroid
    order = sorted(range(len(pool.entries)), key=lambda j: (-sims[j], pool.entries[j].id))[:k]
    return [{"id": pool.entries[j].id, "name": pool.entries[j].name, "similarity": round(float(sims[j]), 4)}
            for j in order]


def describe_group(pool: Pool, idx: np.ndarray, keywords: Sequence[str], phrase: str, level: str,
                   config: DiscoverConfig) -> Proposal:
    """A proposal for the pool's passages ``idx`` named ``phrase`` (its c-TF-IDF ``keywords``
    shown beside): quotes, draft definition, nearest entries and why not, phases, kind."""
    members = [pool.passages[i] for i in idx]
    ivs = sorted({m.interview for m in members}, key=natural_key)
    centroid = pool.centroid(idx)
    sims = pool.A[idx] @ centroid
    nearest = nearest_entries(pool, centroid)
    suggestion = "variant" if nearest and nearest[0]["similarity"] >= config.variant_threshold else "new"
    why = ""
    if nearest:
        entry = next(e for e in pool.entries if e.id == nearest[0]["id"])
        why = why_not_entry(entry.name, entry.describe(), keywords, nearest[0]["similarity"], config.variant_threshold)
    phase_counts = Counter(ph for m in members for ph in m.prediction.phases)
    phases = tuple(ph for ph, k in sorted(phase_counts.items(), key=lambda kv: (-kv[1], kv[0]))
                   if k >= max(2, len(members) * 0.25))
    quotes = tuple(pick_quotes(members, sims, config))
    member_ids = tuple(sorted(m.id for m in members))
    name = display_name(phrase, keywords)
    central = [members[k].quote for k in np.argsort(-sims, kind="stable")[:3]]
    return Proposal(
        id=proposal_id(member_ids), name=name, keywords=tuple(keywords[: config.n_keywords]), quotes=quotes,
        size=len(members), n_interviews=len(ivs), interviews=tuple(ivs), members=member_ids,
        nearest=tuple(nearest), suggestion=suggestion, phases=phases, cohesion=round(float(sims.mean()), 4),
        catalog=pool.catalog.tag, level=level, definition=draft_definition(name, central),
        kind=set_aside_kind([m.text for m in members], [m.position for m in members], config), why_not=why)

"""Discovery: propose new catalog entries from problem talk the catalog does not cover.

1. :mod:`~extractor.discover.passages`: keep interviewee turns that are substantive, describe
   a problem (the classifier's relevance signal) and match no catalog entry, minus the
   speaker's background; of each keep its evidence sentences;
2. :mod:`~extractor.discover.pipeline`: drop passages close to an entry's description, embed
   and cluster the rest (:mod:`~extractor.discover.grouping`), keep groups voiced in >= 2
   interviews;
3. :mod:`~extractor.discover.naming` and :mod:`~extractor.discover.describe`: a short noun
   phrase its passages use as the name (KeyBERT-style, MMR across groups), a draft
   definition, quotes, the nearest catalog entry and why it is not that entry;
4. :mod:`~extractor.discover.report`: a Markdown report.

This package clusters and describes; it decides nothing. A reviewer's decisions (accept into
the catalog, reject into a memory the next run reads) are :mod:`extractor.proposals`.
"""

from __future__ import annotations

from typing import Any

from extractor.discover.config import DiscoverConfig, DiscoveryResult, config_from_kwargs
from extractor.discover.describe import set_aside_kind
from extractor.discover.grouping import FILLER_WORDS, ctfidf_keywords
from extractor.discover.naming import GENERIC_WORDS, choose_names, phrases_of
from extractor.discover.passages import evidence_window, is_substantive, relevance
from extractor.discover.pipeline import discover, merge_near_duplicates, run_discovery
from extractor.discover.report import render_report
from extractor.jsonl import read_predictions
from extractor.proposals import Proposal, Quote, proposal_id

__all__ = [
    "DiscoverConfig", "DiscoveryResult", "config_from_kwargs", "set_aside_kind", "FILLER_WORDS", "ctfidf_keywords",
    "GENERIC_WORDS", "choose_names", "phrases_of", "evidence_window", "is_substantive", "relevance", "discover",
    "merge_near_duplicates", "run_discovery", "render_report", "read_predictions", "Proposal", "Quote",
    "proposal_id", "cli_embedder",
]


def cli_embedder(name: str | None) -> Any:
    """The embedder the CLI uses (tests replace it with a HashingEmbedder)."""
    from extractor.embed import make_embedder

    return make_embedder(name)

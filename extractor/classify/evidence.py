"""Evidence: for each predicted category, the span of consecutive sentences of the turn that
supports it best, with character offsets into the turn.

A single best-matching sentence is often a filler ("Okay.", "Uh, quality issue."); a reader
needs a passage. The span is grown from the best non-filler sentence towards its better
neighbour until it holds ``min_words`` words (usually 1-3 sentences), unless the turn is shorter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from extractor.classify.encoder import Span

MIN_WORDS = 8
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
_FILLER_WORDS = frozenset(
    "okay ok yeah yes yep no nope right so um umm uh uhm hmm mm mhm well sure exactly alright "
    "and but or the a an i you we it that this is was like just maybe oh ah thanks thank good great "
    "know mean see think quality issue issues".split())


def words(text: str) -> int:
    return len(_WORD.findall(text))


def is_filler(sentence: str) -> bool:
    """A sentence with fewer than two words outside a small list of fillers and function words."""
    return sum(1 for w in _WORD.findall(sentence.lower()) if w not in _FILLER_WORDS) < 2


def best_span(text: str, spans: Sequence[Span], scores: np.ndarray, min_words: int = MIN_WORDS) -> Span:
    """Character span (start, end) in ``text`` of the passage around the best-scoring
    non-filler sentence, grown until it has ``min_words`` words."""
    if not spans:
        return (0, len(text))
    sents = [text[a:z] for a, z in spans]
    n_words = [words(s) for s in sents]
    content = np.array([not is_filler(s) for s in sents])
    s = np.where(content, scores, -np.inf) if content.any() else np.asarray(n_words, float)
    lo = hi = int(np.argmax(s))
    total = n_words[lo]
    while total < min_words and (lo > 0 or hi < len(spans) - 1):
        left = scores[lo - 1] + (0.5 if content[lo - 1] else 0.0) if lo > 0 else -np.inf
        right = scores[hi + 1] + (0.5 if content[hi + 1] else 0.0) if hi < len(spans) - 1 else -np.inf
        if right >= left:
            hi += 1
            total += n_words[hi]
        else:
            lo -= 1
            total += n_words[lo]
    return (spans[lo][0], spans[hi][1])


def evidence(text: str, spans: Sequence[Span], sent_emb: np.ndarray, targets: dict[str, np.ndarray],
             ) -> dict[str, Span]:
    """Per category, the span best supporting it; ``targets[c]`` holds the category's catalog
    embeddings (description first, then prototypes): a sentence scores its similarity to the
    description plus its best similarity to a prototype."""
    out = {}
    for c, T in targets.items():
        sim = sent_emb @ T.T
        score = sim[:, 0] + (sim[:, 1:].max(axis=1) if T.shape[0] > 1 else 0.0)
        out[c] = best_span(text, spans, np.asarray(score, dtype=float))
    return out

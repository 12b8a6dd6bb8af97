"""Names a researcher would accept: short noun phrases the group's own passages use.

KeyBERT's method over a group rather than one document, as BERTopic's ``KeyBERTInspired``
does: candidate phrases are contiguous 1-4 word spans of the members' passages that begin
and end with a content word (a part-of-speech-free stand-in for spaCy's noun chunks, whose
English pipelines are not on the package index); the ones several members use and the rest
of the pool does not are kept (c-TF-IDF's idea); they are ranked by the cosine similarity of
their embedding to the group's centroid; and names are given greedily with maximal marginal
relevance, so no two groups get near-identical names.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from extractor.discover.grouping import encode_unique, stop_words

# Words every interview of this study uses: fine inside a phrase ("data quality"), but alone
# they name nothing.
GENERIC_WORDS = frozenset(
    """
    data model models system systems machine learning ml ai example examples company companies client clients
    customer customers work working worked project projects problem problems issue issues case cases people team
    teams business process processes quality thing part level information use fact way end research solution
    solutions different differently main hard easy important available needed need needs build building built
    compare compared collected encounter encountered dealt interested sorry answer answers day days month months
    year years week weeks figure mix challenge challenges moment point start started depends depend good bad big
    new old real whole certain specific particular sure kind type types set sets basis side lot cause reason
    """.split()
)

# Verbs and adverbs of speech that end no noun phrase.
NOT_A_HEAD = frozenset(
    """
    work try see look find put take give come go start keep run change happen ask call build check know think
    maintain improve create provide include define apply manage support avoid reduce increase
    have having has had comes coming come consider considering induce regard regarding sorry helpful instance
    general using used based thinking basically
    want need make use get say told try tried got put seen found took gave came went ran asked called checked
    fix fixed solve handle deal collect clean train deploy understand explain happens happened
    hard easy difficult possible impossible able same other various
    quite very really even still already always never often just also too again
    """.split()
)

# Words that name nothing alone but start a good phrase ("missing values", "schema changes").
NOT_ALONE = frozenset({"missing", "changes", "changing", "different", "new", "wrong", "manual", "lack", "bad"})

# Function words allowed inside a phrase ("drift between annotators", "lack of labels").
INNER = frozenset({"of", "between", "across", "from", "in", "for", "on", "to", "with", "and"})
TOKEN = re.compile(r"[a-z][a-z\-']*[a-z]|[a-z]")
PRONOUNS = frozenset({"i", "we", "you", "they", "he", "she", "it", "me", "us", "them", "our", "your", "their",
                      "my", "his", "her", "its", "this", "that", "these", "those"})


@functools.lru_cache(maxsize=65536)
def content_word(w: str) -> bool:
    return len(w) > 2 and w not in stop_words() and w not in PRONOUNS and "'" not in w


def phrase_ok(words: Sequence[str]) -> bool:
    """A noun-phrase-like span: content words at both ends, function words only inside, a
    head that is not a verb or adverb, not only study-wide words."""
    first, last = words[0], words[-1]
    if len(words) == 1 and first in NOT_ALONE:
        return False
    if not (content_word(first) and content_word(last)):
        return False
    if last in NOT_A_HEAD or last.endswith(("ly", "ed")) or first.endswith("ly") or first in NOT_A_HEAD:
        return False
    if any(not content_word(w) and w not in INNER for w in words[1:-1]) or len(set(words)) < len(words):
        return False
    if any(w in INNER for w in words) and (first in GENERIC_WORDS or last in GENERIC_WORDS):
        return False  # "regard to data", "architectures of models": the linked words must both say something
    return not all(w in GENERIC_WORDS or not content_word(w) for w in words)


def phrases_of(text: str, max_words: int = 4) -> set[str]:
    """The candidate phrases one passage uses."""
    tokens = TOKEN.findall(text.lower())
    out = set()
    for n in range(1, max_words + 1):
        for i in range(len(tokens) - n + 1):
            words = tokens[i: i + n]
            if phrase_ok(words):
                out.add(" ".join(words))
    return out


@dataclass(frozen=True)
class Group:
    """What naming needs of one group: its passages' texts and interviews, and its centroid."""

    texts: tuple[str, ...]
    interviews: tuple[str, ...]
    centroid: np.ndarray


def candidates(group: Group, pool_df: Counter, n_pool: int, top: int = 25) -> list[tuple[str, float]]:
    """The group's ``top`` candidate phrases by how many of its members (and interviews) use
    them and how much more than the pool does: ``(phrase, weight)``, best first. Phrases used
    by two members from two interviews first; failing any, by two members, then by one."""
    per_member = [phrases_of(t) for t in group.texts]
    df: Counter = Counter(p for s in per_member for p in s)
    ivs: dict[str, set[str]] = {}
    for s, iv in zip(per_member, group.interviews):
        for p in s:
            ivs.setdefault(p, set()).add(iv)
    n = len(group.texts)
    for need, need_iv in ((2, 2), (2, 1), (1, 1)):
        scored = []
        for p, k in df.items():
            if k >= min(need, n) and len(ivs[p]) >= min(need_iv, len(set(group.interviews))):
                lift = (k / n) / max(pool_df[p] / max(n_pool, 1), 1e-9)
                scored.append((p, (k / n) * math.log1p(lift) * (1 + 0.15 * p.count(" "))))
        if scored:
            scored.sort(key=lambda x: (-x[1], x[0]))
            return scored[:top]
    return []


def pool_document_frequency(texts: Sequence[str]) -> Counter:
    return Counter(p for t in texts for p in phrases_of(t))


def choose_names(groups: Sequence[Group], pool_texts: Sequence[str], embedder: Any, diversity: float = 0.7
                 ) -> list[str]:
    """One name per group (same order): the candidate closest to the group's centroid
    (KeyBERT), discounted by its similarity to names already given (MMR, ``diversity`` = the
    weight of fit); groups with more members choose first. "" when a group has no candidate."""
    pool_df = pool_document_frequency(pool_texts)
    cands = [candidates(g, pool_df, len(pool_texts)) for g in groups]
    phrases = sorted({p for c in cands for p, _ in c})
    if not phrases:
        return ["" for _ in groups]
    E = encode_unique(embedder, phrases)
    E = E / np.where(np.linalg.norm(E, axis=1, keepdims=True) == 0, 1.0, np.linalg.norm(E, axis=1, keepdims=True))
    row = {p: i for i, p in enumerate(phrases)}
    names = ["" for _ in groups]
    taken: list[int] = []
    for g in sorted(range(len(groups)), key=lambda i: (-len(groups[i].texts), i)):
        if not cands[g]:
            continue
        best_w = cands[g][0][1] or 1.0
        idx = [row[p] for p, _ in cands[g]]
        # a phrase names more than a word: a small bonus per extra word (at most two)
        longer = np.array([min(p.count(" "), 2) * 0.1 for p, _ in cands[g]])
        fit = E[idx] @ groups[g].centroid + 0.25 * np.array([w / best_w for _, w in cands[g]]) + longer
        redundancy = (E[idx] @ E[taken].T).max(axis=1) if taken else np.zeros(len(idx))
        score = diversity * fit - (1 - diversity) * redundancy
        k = int(np.argmax(score))
        names[g] = expand(cands[g][k][0], groups[g].texts)
        taken.append(idx[k])
    return names


def expand(word: str, texts: Sequence[str]) -> str:
    """A one-word name grown into the phrase its members use it in most ("missing" ->
    "missing values"); the word itself when no member uses it in a phrase."""
    if " " in word:
        return word
    uses: Counter = Counter(p for t in texts for p in phrases_of(t, 3) if " " in p and word in p.split())
    if not uses:
        return word
    return min(uses, key=lambda p: (-uses[p], p.count(" "), p))


def display_name(phrase: str, fallback: Sequence[str] = ()) -> str:
    """"Label drift between annotators" from a phrase; the first fallback term when empty."""
    name = phrase or next(iter(fallback), "") or "unnamed group"
    return name[:1].upper() + name[1:]


def draft_definition(name: str, central_texts: Sequence[str], max_words: int = 30) -> str:
    """One sentence from the group's most central passages: the first of their sentences
    that uses a word of the name, as an example of what the entry covers."""
    from extractor.discover.passages import split_sentences, word_count

    words = {w for w in TOKEN.findall(name.lower()) if content_word(w)}
    sentences = [s for t in central_texts for s in split_sentences(t) if word_count(s) >= 5]
    pick = next((s for s in sentences if words & set(TOKEN.findall(s.lower()))), sentences[0] if sentences else "")
    tokens = pick.split()
    if len(tokens) > max_words:
        pick = " ".join(tokens[:max_words]) + " …"
    subject = name[:1].lower() + name[1:] if name else "this"
    return f"Practitioners report problems with {subject}, e.g. \u201c{pick}\u201d" if pick else \
        f"Practitioners report problems with {subject}."


def why_not_entry(entry_name: str, entry_text: str, keywords: Sequence[str], similarity: float,
                  variant_threshold: float) -> str:
    """Why the nearest catalog entry is not this group: the group's distinctive words its
    description does not use, and how similar the two are."""
    text = entry_text.lower()
    absent = [k for k in keywords if not all(w in text for w in k.split())][:4]
    said = f"its description never mentions {', '.join(absent)}" if absent else "it covers the same words"
    if similarity >= variant_threshold:
        return f"Close to {entry_name} (similarity {similarity:.2f}), but {said}: maybe a variant of it."
    return f"Not {entry_name}: {said}, and the two are far apart (similarity {similarity:.2f} < {variant_threshold})."

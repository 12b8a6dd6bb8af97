"""Personal-data check run before anything leaves the machine.

Flags likely unredacted e-mail addresses, phone numbers and person names in
transcripts, as warnings with ``file:line``. Person names come from a gazetteer of about
21,000 given names and 21,000 family names shipped in a maintained package
(:mod:`extractor.person_names`, Faker's person data, no download): a capitalised given name
("Ricardo", "Ed"), with the family name or initial that follows it ("Mario Debt", "Ali V");
a capitalised word before a known family name; and spaCy ``Matcher`` patterns over a blank
English pipeline: a title before a capitalised word ("Dr. Smith"), self-introductions
("my name is ..."), a speaker label that is a name. Given names that are everyday words
("Will", "Grace") count only mid-sentence or with a family name. Pseudonyms such as
"Company 1" or "Interviewer 2" are not flagged. It is a heuristic: it warns, never blocks.
scripts/bench_privacy.py measures its recall on names inserted into the corpus.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from extractor.person_names import Gazetteer, gazetteer

log = logging.getLogger(__name__)

#: Changes whenever the rules change what is found: a cache of findings keyed by file content
#: (``extract``'s OUT/.cache/privacy) must include it, or an upgrade serves the old findings.
RULES_VERSION = "2-gazetteer"

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# International or North-American style numbers with separators; timestamps ([00:38:00]),
# years and plain counts do not match.
PHONE = re.compile(
    r"(?<![\w:])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w:])"
    r"|(?<![\w:])\+\d{1,3}(?:[\s.-]\d{1,4}){3,5}(?![\w:])"
)
# A leading "Speaker:" label is cut off before matching so the first word after it counts
# as a sentence start ("Interviewee: Mark the rows ...").
LEADING_LABEL = re.compile(r"^\s*(?:\*\*|#+\s*)?[\w .'-]{1,40}?(?:\*\*)?\s*:\s+")
SPEAKER_NAME = re.compile(r"^\s*(?:\*\*|#+\s*)?([A-Z][a-z]+(?:[ -][A-Z][a-z]+)+)\s*(?:\*\*)?\s*:")
SPEAKER_WORD = re.compile(r"^\s*(?:\*\*|#+\s*)?([A-Z][a-z]+)\s*(?:\*\*)?\s*:")

TITLES = ("mr", "mrs", "ms", "miss", "dr", "prof", "professor", "sir", "madam", "mme", "mlle", "monsieur")
_TITLE_TOKENS = TITLES + tuple(t + "." for t in ("mr", "mrs", "ms", "dr", "prof", "mme", "mlle"))  # "Dr." is one token
# Labels and pseudonyms the study uses; never a person's name.
NOT_NAMES = {
    "interviewer", "interviewee", "speaker", "participant", "company", "country", "university", "city",
    "person", "client", "team", "moderator", "unknown", "respondent", "host", "guest",
}
_WORD = re.compile(r"[a-z']+")
_TRIGGERS = set(TITLES) | {"name", "called", "m'appelle"}


@dataclass(frozen=True)
class Finding:
    """One likely piece of personal data: where, what kind, the matched text."""

    file: str
    line: int
    kind: str  # "email" | "phone" | "name"
    text: str
    rule: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: possible {self.kind} {self.text!r} ({self.rule})"


_NLP = None


def _pipeline():
    """Blank English tokenizer + sentencizer + name Matcher, built once."""
    global _NLP
    if _NLP is None:
        import spacy
        from spacy.matcher import Matcher

        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        m = Matcher(nlp.vocab)
        from spacy.lang.en.stop_words import STOP_WORDS

        # Stop words are never names: "Mr. What ..." is a question, "Sir. So ..." a sentence end.
        cap = {"IS_TITLE": True, "IS_ALPHA": True, "LOWER": {"NOT_IN": sorted(NOT_NAMES | set(STOP_WORDS))}}
        # The title itself capitalised: "sir. If ..." is a sentence end, "Sir Alan" a name.
        m.add("title", [[{"LOWER": {"IN": list(_TITLE_TOKENS)}, "IS_TITLE": True}, {"ORTH": ".", "OP": "?"}, cap,
                         {**cap, "OP": "?"}]])
        m.add("self-introduction", [
            [{"LOWER": "my"}, {"LOWER": "name"}, {"LOWER": "is"}, cap, {**cap, "OP": "?"}],
            [{"LOWER": "i"}, {"LOWER": "am"}, {"LOWER": "called"}, cap, {**cap, "OP": "?"}],
            [{"LOWER": "je"}, {"LOWER": "m'appelle"}, cap, {**cap, "OP": "?"}],
        ])
        _NLP = (nlp, m)
    return _NLP


_TOKEN = re.compile(r"[^\W\d_][\w'’-]*")
_SENTENCE_END = re.compile(r"[.!?…]")
_POSSESSIVE = re.compile(r"['’]s?$")


def _is_cap(word: str) -> bool:
    """Capitalised like a name: "Ricardo", "McDonald", "O'Brien", an initial "V"; not "ML" or "data"."""
    return word[0].isupper() and (len(word) == 1 or not word.isupper())


def _tail(body: str, tokens: list[re.Match[str]], i: int, family: frozenset[str], common: frozenset[str]) -> int:
    """How many tokens after ``tokens[i]`` continue the name: family names, other capitalised non-words,
    initials ("V", "V."), at most two, separated by spaces only."""
    k = i
    while k + 1 < len(tokens) and k - i < 2:
        gap, word = body[tokens[k].end():tokens[k + 1].start()], tokens[k + 1].group(0)
        if gap.strip(" .") or (gap.count(".") and len(tokens[k].group(0)) > 1) or not _is_cap(word):
            break
        key = _POSSESSIVE.sub("", word).lower()
        if not ((len(word) == 1 and word not in "IX") or key in family or key not in common):
            break
        k += 1
    return k - i


def _surname_like(word: str, family: frozenset[str]) -> bool:
    """A family name, or an initial ("V"; not the pronoun "I" nor the placeholder "X")."""
    return (len(word) == 1 and word not in "IX") or _POSSESSIVE.sub("", word).lower() in family


def _name_rule(key: str, start: bool, followed: bool, g: Gazetteer) -> str | None:
    """Why a capitalised word (lower-cased ``key``) starts a person name, or ``None``.

    ``start``: first word of a sentence; ``followed``: a family name or an initial follows.
    """
    if key in g.given:
        if followed:
            return "given name"
        if key in g.not_persons:
            return None
        if key not in g.common:
            return "given name"
        return None if start else "given name mid-sentence"
    if followed and key not in g.common and key.isalpha() and len(key) > 2:
        return "before a family name"
    return None


def gazetteer_names(body: str) -> list[tuple[str, str]]:
    """``(name, rule)`` for each person name the gazetteer finds in one line of text (labels cut off)."""
    g = gazetteer()
    tokens = list(_TOKEN.finditer(body))
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        word = tokens[i].group(0)
        key = _POSSESSIVE.sub("", word).lower()
        start = i == 0 or _SENTENCE_END.search(body[tokens[i - 1].end():tokens[i].start()]) is not None
        if not _is_cap(word) or len(word) < 2 or key in NOT_NAMES:
            i += 1
            continue
        n = _tail(body, tokens, i, g.family, g.common)
        rule = _name_rule(key, start, n > 0 and _surname_like(tokens[i + 1].group(0), g.family), g)
        if rule is None:
            i += 1
            continue
        out.append((_POSSESSIVE.sub("", body[tokens[i].start():tokens[i + n].end()]), rule))
        i += n + 1
    return out


def scan_text(text: str, file: str = "<text>") -> list[Finding]:
    """Findings in one text, with 1-based line numbers."""
    from spacy.tokens import Span
    from spacy.util import filter_spans

    nlp, matcher = _pipeline()
    out: list[Finding] = []
    for n, line in enumerate(text.splitlines(), 1):
        for m in EMAIL.finditer(line):
            out.append(Finding(file, n, "email", m.group(0), "e-mail pattern"))
        for m in PHONE.finditer(line):
            out.append(Finding(file, n, "phone", m.group(0).strip(), "phone pattern"))
        out.extend(_label_names(file, n, line))
        body = LEADING_LABEL.sub("", line, count=1)
        found = [Finding(file, n, "name", name, rule) for name, rule in gazetteer_names(body)]
        # The Matcher only fires around these words: skip spaCy on the other lines (most of them).
        if _TRIGGERS & set(_WORD.findall(line.lower())):
            doc = nlp(body)
            spans = [Span(doc, s, e, label=mid) for mid, s, e in matcher(doc)]
            # Longest match wins; a gazetteer name inside a title or self-introduction is the same name.
            titled = [Finding(file, n, "name", span.text, span.label_) for span in filter_spans(spans)]
            found = titled + [f for f in found if not any(f.text in t.text for t in titled)]
        out.extend(found)
    return _dedupe(out)


def _label_names(file: str, n: int, line: str) -> list[Finding]:
    """A speaker label that is a full name ("John Carter:") or a known given name ("Ricardo:")."""
    sm = SPEAKER_NAME.match(line)
    if sm and not ({w.lower() for w in re.split(r"[ -]", sm.group(1))} & NOT_NAMES):
        return [Finding(file, n, "name", sm.group(1), "speaker label")]
    single = SPEAKER_WORD.match(line)
    if single and single.group(1).lower() in gazetteer().given and single.group(1).lower() not in NOT_NAMES:
        return [Finding(file, n, "name", single.group(1), "speaker label")]
    return []


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in findings:
        key = (f.file, f.line, f.kind, f.text)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def scan_file(path: str | Path) -> list[Finding]:
    from extractor.safeio import open_regular

    path = Path(path)
    with open_regular(path, what="a transcript file") as fh:  # never a FIFO or a device
        text = fh.read().decode("utf-8", errors="replace")
    return scan_text(text, str(path))


def scan_paths(paths: Iterable[str | Path]) -> Iterator[Finding]:
    """Findings over several transcript files, in file order."""
    for p in paths:
        yield from scan_file(p)

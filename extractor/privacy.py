"""Personal-data check run before anything leaves the machine.

Flags likely unredacted e-mail addresses, phone numbers and person names in
transcripts, as warnings with ``file:line``. Names come from spaCy ``Matcher`` patterns
over a blank English pipeline (no model download): a title before a capitalised word
("Dr. Smith"), self-introductions ("my name is ..."), a speaker label that looks like a
full name, and common first names written capitalised mid-sentence. Pseudonyms such as
"Company 1" or "Interviewer 2" are not flagged. It is a heuristic: it warns, never blocks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

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

TITLES = ("mr", "mrs", "ms", "miss", "dr", "prof", "professor", "sir", "madam", "mme", "mlle", "monsieur")
_TITLE_TOKENS = TITLES + tuple(t + "." for t in ("mr", "mrs", "ms", "dr", "prof", "mme", "mlle"))  # "Dr." is one token
# Labels and pseudonyms the study uses; never a person's name.
NOT_NAMES = {
    "interviewer", "interviewee", "speaker", "participant", "company", "country", "university", "city",
    "person", "client", "team", "moderator", "unknown", "respondent", "host", "guest",
}
# Common given names: capitalised mid-sentence they are most likely a person.
FIRST_NAMES = set("""
aaron adam adrian ahmed alan albert alex alexander alexandre alice amanda amy andrea andrew angela anna anne
anthony antoine arthur ashley barbara ben benjamin bob brian camille carlos caroline catherine charles chloe
chris christian christine christopher claire daniel david deborah dennis diana dominic donald dorothy edward
elena elizabeth emily emma eric eva frank francois frederic gabriel gary george grace guillaume hannah helen
henry hugo isabelle jack jacques james jane jason jean jeff jennifer jessica jim joe john jonathan jose joseph
joshua julia julie justin karen kate kevin laura laurent lisa louis lucas lucy luis manon marc marco maria marie
mark martin mary matthew michael michelle mohamed mohammed nathalie nicolas nicole olivia oscar patricia patrick
paul peter philippe pierre rachel rebecca richard robert ryan sam samuel sandra sarah sebastien sophie stephanie
stephen steve steven susan thomas tim timothy tom valerie victor vincent william yann yves zoe
""".split())


_WORD = re.compile(r"[a-z']+")
_TRIGGERS = FIRST_NAMES | set(TITLES) | {"name", "called", "m'appelle"}


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
        m.add("first-name", [[{"LOWER": {"IN": sorted(FIRST_NAMES)}, "IS_TITLE": True, "IS_SENT_START": False},
                              {**cap, "OP": "?"}],
                             [{"LOWER": {"IN": sorted(FIRST_NAMES)}, "IS_TITLE": True}, cap]])
        _NLP = (nlp, m)
    return _NLP


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
        sm = SPEAKER_NAME.match(line)
        if sm and not ({w.lower() for w in re.split(r"[ -]", sm.group(1))} & NOT_NAMES):
            out.append(Finding(file, n, "name", sm.group(1), "speaker label"))
        # The Matcher only fires around these words: skip spaCy on the other lines (most of them).
        if not _TRIGGERS & set(_WORD.findall(line.lower())):
            continue
        doc = nlp(LEADING_LABEL.sub("", line, count=1))
        spans = [Span(doc, s, e, label=mid) for mid, s, e in matcher(doc)]
        # Longest match wins; overlapping shorter ones are the same name.
        for span in filter_spans(spans):
            out.append(Finding(file, n, "name", span.text, span.label_))
    return _dedupe(out)


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

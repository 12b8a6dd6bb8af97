"""Speaker labels: which label names a role, which looks like a person, who is the interviewee."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

from extractor.segment.records import Segment
from extractor.types import INTERVIEWEE, INTERVIEWER, normalize_text

_ROLE_WORDS = {
    "interviewer": INTERVIEWER, "interviewers": INTERVIEWER, "moderator": INTERVIEWER, "researcher": INTERVIEWER,
    "host": INTERVIEWER, "facilitator": INTERVIEWER, "q": INTERVIEWER, "question": INTERVIEWER, "i": INTERVIEWER,
    "intervieweur": INTERVIEWER, "enqueteur": INTERVIEWER, "enquêteur": INTERVIEWER,
    "interviewee": INTERVIEWEE, "interviewees": INTERVIEWEE, "participant": INTERVIEWEE, "respondent": INTERVIEWEE,
    "a": INTERVIEWEE, "answer": INTERVIEWEE, "p": INTERVIEWEE, "guest": INTERVIEWEE, "interviewé": INTERVIEWEE,
    "r": INTERVIEWEE,  # "I:" / "R:" (interviewer / respondent), a common qualitative-research convention
    "interviewée": INTERVIEWEE,
}
# Words that end with a colon at the start of a line without naming a speaker.
_NOT_SPEAKERS = {
    "note", "notes", "nb", "example", "examples", "update", "edit", "edited", "warning", "source", "sources",
    "summary", "todo", "ps", "re", "date", "time", "duration", "location", "place", "title", "topic", "subject",
    "interview", "transcript", "attendees", "participants", "speakers", "recording", "link", "http", "https",
    "ok", "okay", "so", "yes", "no", "well", "um", "uh", "and", "but", "because", "also", "then", "step", "tip",
    "answer key", "question key", "file", "project", "language", "meeting", "agenda", "action items",
}
_ROLE_RE = re.compile(r"^(?P<word>[^\W\d_]+(?:[ .-][^\W\d_]+)?)[\s._#-]*(?P<num>\d+(?:\s+\d+)?)?$")
# Capitalised words ("Maria Lopez", "Dr. Bob Li", "Speaker 2"), lowercase particles allowed.
_NAME_RE = re.compile(
    r"^[A-Z\u00C0-\u00DE][\w.'\u2019-]*(?:\s+(?:[A-Z0-9\u00C0-\u00DE][\w.'\u2019-]*"
    r"|van|von|de|der|den|da|di|du|del|della|la|le|bin|ibn|al|el)){0,3}$")
_PAREN_RE = re.compile(r"^(?P<name>[^()]+?)\s*\((?P<inner>[^()]{1,40})\)$")
TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
TIME_RE = re.compile(TIME)
LEAD_TIME_RE = re.compile(rf"^[\[(]?(?P<time>{TIME})[\])]?(?:\s+|$)")
_TRAIL_TIME_RE = re.compile(rf"\s*[\[(]?(?P<time>{TIME})[\])]?\s*$")


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@lru_cache(maxsize=4096)
def role_of_label(label: str) -> str | None:
    """Role named by a speaker label (``"Interviewer 2"``, ``"interviewr"``, ``"Q"``), else ``None``.

    Misspellings of interviewer/interviewee within two edits are recognised; the
    ending (``-er`` vs ``-ee``) decides between them.
    """
    label = label.strip().strip("*_#:").strip()
    m = _PAREN_RE.match(label)
    if m:  # "Alice (Interviewer)" or "Interviewer (Alice)"
        return role_of_label(m["inner"]) or role_of_label(m["name"])
    m = _ROLE_RE.match(label)
    if not m:
        return None
    word = m["word"].lower().replace(" ", "").replace("-", "").replace(".", "")
    if word in _ROLE_WORDS:
        # Single letters only count as roles in their Q/A/I/R/P1 uses, not as initials of names.
        if len(word) == 1 and (word == "p") != bool(m["num"]):
            return None
        return _ROLE_WORDS[word]
    if 7 <= len(word) <= 14 and word.startswith("int"):
        d_er, d_ee = _edit_distance(word, "interviewer"), _edit_distance(word, "interviewee")
        if min(d_er, d_ee) <= 2:
            if word.endswith(("er", "r", "eur")):
                return INTERVIEWER
            if word.endswith(("ee", "e", "é", "ée")):
                return INTERVIEWEE
            if d_er != d_ee:
                return INTERVIEWER if d_er < d_ee else INTERVIEWEE
    return None


def name_label(label: str) -> str | None:
    """The label itself when it looks like a person's name ("Alice", "Dr. Bob Li"), else ``None``."""
    m = _PAREN_RE.match(label)
    core = m["name"] if m else label
    if len(label) > 48 or not _NAME_RE.match(core) or core.lower().rstrip(".") in _NOT_SPEAKERS:
        return None
    return label


def split_label(label: str) -> tuple[str, str | None]:
    """Remove a timestamp from a label: ``"Alice [00:01:02]"`` -> ``("Alice", "00:01:02")``."""
    m = _TRAIL_TIME_RE.search(label)
    if m and m.start() > 0:
        return label[: m.start()].strip(), m["time"]
    m = LEAD_TIME_RE.match(label)
    if m and m.end() < len(label):
        return label[m.end():].strip(), m["time"]
    return label.strip(), None


def norm_name(name: str) -> str:
    return normalize_text(name).casefold()


def name_in(label: str, names: set[str]) -> bool:
    """Whether a speaker label is one of the given names ("Maria" also matches "Maria Lopez")."""
    if not names:
        return False
    key, base = norm_name(label), norm_name(label.split("(")[0])
    return any(key == n or base == n or key.startswith(n + " ") for n in names)



def assign_roles(segments: Sequence[Segment], interviewers: set[str], interviewees: set[str],
                  notes: list[str]) -> dict[str, str]:
    roles: dict[str, str] = {}
    named_words: Counter[str] = Counter()
    for seg in segments:
        if seg.speaker_raw in roles or seg.speaker_raw in named_words:
            if seg.speaker_raw in named_words:
                named_words[seg.speaker_raw] += sum(len(p.split()) for p in seg.pieces)
            continue
        if name_in(seg.speaker_raw, interviewers):
            roles[seg.speaker_raw] = INTERVIEWER
        elif name_in(seg.speaker_raw, interviewees):
            roles[seg.speaker_raw] = INTERVIEWEE
        elif (role := role_of_label(seg.speaker_raw)) is not None:
            roles[seg.speaker_raw] = role
        else:
            named_words[seg.speaker_raw] += sum(len(p.split()) for p in seg.pieces)
    if named_words and (interviewers or interviewees) and not any(
            name_in(s, interviewers | interviewees) for s in roles):
        notes.append(f"none of the names given with --interviewer/--interviewee is a speaker here"
                     f" (speakers: {', '.join(named_words)})")
    if named_words:
        if interviewers and not interviewees:
            guessed = {name: INTERVIEWEE for name in named_words}
        elif interviewees and not interviewers:
            guessed = {name: INTERVIEWER for name in named_words}
        elif INTERVIEWEE in roles.values() and not interviewers:
            guessed = {name: INTERVIEWER for name in named_words}
        else:
            # Default rule: the named speaker with the most words is the interviewee.
            top = max(named_words, key=lambda s: (named_words[s], -list(named_words).index(s)))
            guessed = {name: INTERVIEWEE if name == top else INTERVIEWER for name in named_words}
            who = ", ".join(f"{n}={r}" for n, r in guessed.items())
            notes.append(f"speaker roles guessed ({who}: the speaker with the most words is the interviewee);"
                         " name the interviewers with --interviewer to override")
        roles.update(guessed)
    return roles



def name_set(names: Iterable[str] | str | None) -> set[str]:
    if names is None:
        return set()
    if isinstance(names, str):
        names = names.split(",")
    return {norm_name(n) for n in names if n and n.strip()}


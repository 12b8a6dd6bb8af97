"""Which passages discovery clusters: problem talk that no catalog entry covers.

A turn goes into clustering when it is substantive (not a greeting, thanks or a question
back), describes a problem (the classifier's relevance signal), matches no catalog entry
(no category predicted or scored high) and is not the speaker's background. Of such a turn
only its *evidence* is kept: the window of consecutive sentences that says most about a
problem and nothing about who the speaker is, so a rambling answer is clustered by what it
complains about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from extractor.catalog import Catalog
from extractor.discover.config import DiscoverConfig, DiscoveryResult
from extractor.types import Prediction, Turn, natural_key, normalize_text

WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")

# Greeting, thanks and interview-procedure talk: matched only on short turns, because a
# long answer may start with "thanks, good question" and still be substantive.
PROCEDURE = re.compile(
    r"\b(thank(s| you)|nice to (meet|see)|good (morning|afternoon|evening)|hello|\bhi\b|bye|"
    r"can you (hear|see) me|hear me|my (audio|mic|microphone|camera|screen)|share (my|the) screen|"
    r"record(ing|ed)?|consent|transcri(pt|be|ption)|you'?re welcome|no problem|"
    r"(next|last|other) question|go ahead|that'?s (all|it) (for|from) me|"
    r"my name is|let me (think|see)|repeat the question|(do|can) you repeat)\b",
    re.IGNORECASE,
)

# Who the speaker is: role, employer, studies, career. Such sentences are background, not problems.
INTRODUCTION = re.compile(
    r"\b(my (current )?(role|position|job|title|background|name|team)|i'?m (a|an|the|working|currently)\b|"
    r"i am (a|an|the|working|currently)\b|i work(ed)? (as|at|for|in|on)|years? (of experience|ago)|"
    r"currently (working|employed|at)|phd|master'?s|bachelor|degree|studied|i joined|responsible for|"
    r"in charge of|my company|our company|i have a background)",
    re.IGNORECASE,
)

# Words people use when they describe something going wrong.
PROBLEM_CUES = re.compile(
    r"\b(problems?|issues?|challeng\w*|difficult\w*|hard(er)?|struggl\w*|fail\w*|broke|break\w*|wrong|errors?|"
    r"bugs?|missing|lack\w*|nois\w+|inconsisten\w*|drift\w*|slow\w*|expensive|costs?|costly|can'?t|cannot|"
    r"couldn'?t|didn'?t work|doesn'?t work|not enough|too (much|many|long)|pain\w*|headache|mistakes?|bad|poor\w*|"
    r"unreliable|unstable|tricky|complicated|messy|dirty|hassle|bottleneck\w*|limit\w*|risk\w*|concern\w*|"
    r"troubles?|annoying|frustrat\w*|worse|degrad\w*|crash\w*|delay\w*|unclear|confus\w*|bias\w*|leak\w*|"
    r"outdated|incorrect|inaccura\w*|impossible|time[- ]consuming|manual\w*)\b",
    re.IGNORECASE,
)

SHORT_INTERVIEW = 20
QUOTE_SENTENCES = 3

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


@dataclass(frozen=True)
class Passage:
    """One interviewee turn as discovery sees it: the ``text`` clustered (the turn without its
    background sentences, or a window of ``passage_sentences``), the whole ``turn_text``, the
    interviewer's ``question``, its place in the interview (0 = first turn, 1 = last), its
    relevance score (``None`` = unknown) and its ``evidence``, what quotes show."""

    prediction: Prediction
    text: str
    turn_text: str
    question: str
    position: float = 0.0
    relevance: float | None = None
    evidence: str = ""  # the QUOTE_SENTENCES sentences of ``text`` richest in problem words

    @property
    def quote(self) -> str:
        return self.evidence or self.text

    @property
    def id(self) -> str:
        return self.prediction.id

    @property
    def interview(self) -> str:
        return self.prediction.interview


def word_count(text: str) -> int:
    return len(WORD.findall(text))


def is_substantive(text: str, config: DiscoverConfig | None = None) -> bool:
    """Whether an interviewee turn can carry an issue: at least ``min_words`` words; if
    shorter than ``procedure_max_words``, no greeting / thanks / procedure phrase; if shorter
    than ``question_max_words``, not ending with "?" (a question back to the interviewer)."""
    config = config or DiscoverConfig()
    n = word_count(text)
    if n < config.min_words:
        return False
    if n < config.procedure_max_words and PROCEDURE.search(text):
        return False
    if n < config.question_max_words and text.rstrip().endswith("?"):
        return False
    return True


def split_sentences(text: str) -> list[str]:
    """Sentences of a turn (a full stop, ! or ? followed by a capital starts a new one)."""
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]


def sentence_score(sentence: str) -> float:
    """How much a sentence is problem talk: its problem cues, minus background and filler."""
    if INTRODUCTION.search(sentence):
        return -2.0
    n = word_count(sentence)
    if n < 4:
        return -0.5
    return float(len(PROBLEM_CUES.findall(sentence))) + min(n, 25) / 100.0


def evidence_window(text: str, max_sentences: int) -> str:
    """The run of at most ``max_sentences`` consecutive sentences with the highest score,
    without its background sentences; "" when every sentence is background. 0 = the whole
    turn, background sentences removed."""
    sentences = split_sentences(text)
    scores = [sentence_score(s) for s in sentences]
    if not sentences or max(scores) <= -2.0:
        return ""
    if max_sentences and len(sentences) > max_sentences:
        starts = range(len(sentences) - max_sentences + 1)
        best = max(starts, key=lambda i: (sum(scores[i: i + max_sentences]), -i))
        sentences, scores = sentences[best: best + max_sentences], scores[best: best + max_sentences]
    return " ".join(s for s, v in zip(sentences, scores) if v > -2.0)


def relevance(p: Prediction, phase_ids: Sequence[str]) -> float | None:
    """The classifier's "this is about a problem" signal: its best lifecycle-phase score
    (phases are coded on turns that report an issue, whatever the issue); ``None`` when the
    prediction carries no phase score."""
    got = [float(p.scores[k]) for k in phase_ids if k in p.scores]
    return max(got) if got else None


def classifier_match(p: Prediction, cat_ids: set[str], config: DiscoverConfig) -> bool:
    """The classifier put the turn under a catalog entry, or scored one at ``score_threshold``."""
    if any(c in cat_ids for c in p.categories):
        return True
    scores = [float(v) for k, v in p.scores.items() if k in cat_ids]
    return bool(scores) and max(scores) >= config.score_threshold


def prediction_rows(predictions: Iterable[Prediction | Mapping[str, Any]],
                    turns: Sequence[Turn] | None) -> list[tuple[Prediction, str, str]]:
    """(prediction, text, question) of interviewee turns, in a deterministic order."""
    by_id = {t.id: t for t in turns or () if t.id}
    rows = []
    for p in predictions:
        if not isinstance(p, Prediction):
            p = Prediction.from_dict(p)
        t = by_id.get(p.id)
        if t is not None and not t.is_interviewee:
            continue
        text = p.text or (t.text if t else "")
        question = p.question or (t.question if t else "")
        rows.append((p, normalize_text(text), normalize_text(question)))
    rows.sort(key=lambda r: (natural_key(r[0].interview), r[0].turn, r[0].id))
    return rows


def positions(rows: Sequence[tuple[Prediction, str, str]], turns: Sequence[Turn] | None) -> dict[str, float]:
    """Each turn's place in its interview: 0 = first turn, 1 = last (1 for every turn of an
    interview under ``SHORT_INTERVIEW`` turns, which has no opening to set aside)."""
    last: dict[str, int] = {}
    for t in turns or ():
        last[t.interview] = max(last.get(t.interview, 0), t.turn)
    for p, _, _ in rows:
        last[p.interview] = max(last.get(p.interview, 0), p.turn)
    return {p.id: p.turn / max(last[p.interview], 1) if last[p.interview] >= SHORT_INTERVIEW else 1.0
            for p, _, _ in rows}


def leave_reason(row: tuple[Prediction, str, str], passage: str, position: float, rel: float | None,
                 cat_ids: set[str], config: DiscoverConfig) -> str:
    """Why a turn is not clustered ("" = it is): the first filter it fails."""
    p, text, _ = row
    if not is_substantive(text, config):
        return "short_or_procedure"
    if word_count(passage) < config.min_words or (
            position <= config.intro_position and not PROBLEM_CUES.search(passage)):
        return "background"
    if rel is not None and config.relevance_threshold is not None and rel < config.relevance_threshold:
        return "not_a_problem"
    if classifier_match(p, cat_ids, config):
        return "classifier"
    return ""


def select_passages(rows: Sequence[tuple[Prediction, str, str]], turns: Sequence[Turn] | None, catalog: Catalog,
                    config: DiscoverConfig, result: DiscoveryResult) -> list[Passage]:
    """The passages that go on to the zero-shot check and clustering; ``result.stage`` says
    where every other turn left and ``result.stats`` counts them."""
    cat_ids, phase_ids = set(catalog.category_ids), list(catalog.phase_ids)
    where = positions(rows, turns)
    kept: list[Passage] = []
    for row in rows:
        p, text, question = row
        passage = evidence_window(text, config.passage_sentences)
        rel = relevance(p, phase_ids)
        reason = leave_reason(row, passage, where[p.id], rel, cat_ids, config)
        result.stage[p.id] = reason or "unmatched"
        if not reason:
            kept.append(Passage(p, passage, text, question, where[p.id], rel,
                                evidence_window(text, QUOTE_SENTENCES)))
    counts = {k: sum(v == k for v in result.stage.values())
              for k in ("short_or_procedure", "background", "not_a_problem", "classifier")}
    result.stats["substantive"] = len(rows) - counts["short_or_procedure"]
    result.stats["background"] = counts["background"]
    result.stats["not_a_problem"] = counts["not_a_problem"]
    result.stats["matched_by_classifier"] = counts["classifier"]
    return kept

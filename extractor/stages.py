"""The stages of ``extractor extract`` and the run they share, whatever executes them.

extract is a list of stages, each with its input and output records, its cache key and
its reader/writer (JSONL, JSON or npz under the cache directory; never pickle):

============  =========================  ======================  ===================================
stage         input -> output            cache key               cache entry
============  =========================  ======================  ===================================
segment       transcript file -> Turn    path, file SHA-256      ``segments/<key>.jsonl``
predict       an interview's Turns ->    the turns' ids, speak-  ``predictions/<key>.jsonl``
              Prediction                 ers, questions; model,
                                         catalog, taught answers
privacy       file -> Finding            file SHA-256            ``privacy/<sha>.json``
discover      Predictions -> proposals   encoder, text SHA-256   ``embeddings/<encoder>/`` (npz)
report        everything -> report files (not cached)
export        Turns + Predictions ->     (not cached)
              project.qdpx, codebook.qdc
============  =========================  ======================  ===================================

The per-transcript stages (:class:`SegmentStage`, :class:`PredictStage`) are what an
executor distributes: the local executor runs them in this process, the Ray executor
(:mod:`extractor.engine_ray`) on a cluster; both write the same cache entries with the
stage's own writer, and :func:`collect_transcripts` then gathers every transcript's
records from the cache (computing what is still missing), so the corpus stages and the
one manifest writer (:mod:`extractor.extract`) see the same records whichever ran them.
A :class:`RunContext` resolves the catalog, the model fingerprint and the cache once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from extractor.catalog import Catalog
from extractor.errors import ExtractorError, InputError
from extractor.jsonl import read_jsonl, write_jsonl
from extractor.predict import Answer
from extractor.safeio import file_sha256, is_regular, open_regular, remove_damaged
from extractor.types import Labels, Prediction, Turn

log = logging.getLogger(__name__)

CACHE_VERSION = 1


class Classifier(Protocol):
    """What the predict stage runs: ``taught`` maps turn ids to reviewers' labels that re-score
    the other turns (see :meth:`extractor.classify.model.IssueClassifier.predict`)."""

    def predict(self, turns: Sequence[Turn], progress: bool = False,
                taught: Mapping[str, Labels] | None = None) -> list[Prediction]: ...


def cache_key(*parts: str) -> str:
    """SHA-256 of the parts (unit-separated): the one formula of every stage's cache key."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def read_cached(entry: Path, parse: Callable[[Mapping[str, Any]], Any]) -> list[Any] | None:
    """A cache entry's records, or None when it is absent or damaged (then it is recomputed
    and rewritten: a truncated or hand-edited entry must not block every rerun)."""
    if not entry.exists() and not entry.is_symlink():
        return None
    try:
        rows = [parse(d) for d in read_jsonl(entry)]
    except (InputError, KeyError, TypeError, ValueError) as e:
        log.warning("cache entry %s is damaged (%s); recomputing it", entry, e)
        remove_damaged(entry)
        return None
    return rows or None


def utc_now() -> str:
    """The run's creation time, ISO 8601 UTC to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- the run context ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunContext:
    """What every stage of one run shares, resolved once: where, with which model and catalog."""

    out: Path
    cache: Path
    catalog: Catalog
    model_fp: str
    model_info: dict[str, Any]
    created: str
    progress: bool = False

    @classmethod
    def resolve(cls, out_dir: str | Path, classifier: Any, *, catalog: Catalog | None = None,
                model_info: Mapping[str, Any] | None = None, cache_dir: str | Path | None = None,
                created: str | None = None, progress: bool = False) -> RunContext:
        """The catalog is the one given, else the classifier's (the model's), else the packaged one;
        the model fingerprint comes from ``model_info`` or the classifier and must exist."""
        from extractor.catalog import resolve_catalog

        out = Path(out_dir)
        info = dict(model_info or {})
        model_fp = str(info.get("fingerprint") or getattr(classifier, "fingerprint", "") or "")
        if not model_fp:
            raise ExtractorError("extract: the classifier has no fingerprint; pass model_info={'fingerprint': ...}")
        return cls(out, Path(cache_dir) if cache_dir else out / ".cache",
                   resolve_catalog(catalog, getattr(classifier, "catalog_", None)), model_fp, info,
                   created or utc_now(), progress)


# --- the per-transcript stages -------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentStage:
    """segment: one transcript file -> its turns; cached per file path and content."""

    segmenter: Callable[[Path], list[Turn]]

    @staticmethod
    def entry(cache: Path, path: Path, digest: str) -> Path:
        return cache / "segments" / f"{cache_key(str(path.resolve()), digest, str(CACHE_VERSION))[:32]}.jsonl"

    @staticmethod
    def read(entry: Path) -> list[Turn] | None:
        return read_cached(entry, Turn.from_dict)

    def run(self, path: Path) -> list[Turn]:
        return list(self.segmenter(path))

    write = staticmethod(write_jsonl)


def answer_key(a: Labels | Answer) -> dict[str, Any]:
    """What of an answer the predictions depend on (its labels; who and when, if known)."""
    if isinstance(a, Answer):
        return {**a.labels.to_dict(), "reviewer": a.reviewer, "reviewed_at": a.reviewed_at}
    return a.to_dict()


@dataclass(frozen=True)
class PredictStage:
    """predict: one interview's turns -> its interviewee turns' predictions.

    Cached per interview (the classifier reads neighbouring turns as context, so a change
    anywhere in an interview re-predicts that whole interview), the model, the catalog and
    the reviewers' answers taught to the classifier (``answers``: turn id -> labels, or an
    :class:`~extractor.predict.Answer` with who and when).
    """

    model_fp: str
    catalog_fp: str
    answers: Mapping[str, Labels | Answer] = field(default_factory=dict)

    def entry(self, cache: Path, turns: Sequence[Turn]) -> Path:
        parts = [json.dumps([[t.id, t.speaker, t.question] for t in turns]), self.model_fp, self.catalog_fp,
                 str(CACHE_VERSION)]
        if self.answers:  # no answers: the key (and every cache entry) of a run without them
            parts.append(json.dumps(sorted((k, answer_key(v)) for k, v in self.answers.items())))
        return cache / "predictions" / f"{cache_key(*parts)[:32]}.jsonl"

    @staticmethod
    def read(entry: Path) -> list[Prediction] | None:
        return read_cached(entry, Prediction.from_dict)

    def run(self, classifier: Classifier, turns: Sequence[Turn], progress: bool = False) -> list[Prediction]:
        """The classifier's predictions, with the taught answers (passed as ``taught=``) as the
        labels of the turns they name."""
        from extractor.predict import predict_with_answers

        return predict_with_answers(classifier, turns, self.answers, progress=progress)

    write = staticmethod(write_jsonl)


# --- gathering the transcripts ------------------------------------------------------------------


@dataclass
class Segmented:
    """The per-transcript half of a run: turns and predictions plus what the manifest records."""

    turns: list[Turn]
    inputs: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    cache_hits: int
    predictions: list[Prediction] = field(default_factory=list)
    predict_hits: int = 0
    predict_misses: int = 0


def regular_or_skip(path: Path, skipped: list[dict[str, str]]) -> bool:
    """True for a regular file; else the reason is added to ``skipped`` (hashing a FIFO would
    hang, /dev/zero never ends)."""
    if is_regular(path):
        return True
    try:
        open_regular(path, what="a transcript file").close()
    except InputError as e:
        skipped.append({"path": str(path), "error": str(e)})
        return False
    return True


def segment_files(ctx: RunContext, files: Sequence[Path], stage: SegmentStage,
                  fresh: Iterable[str] = ()) -> Segmented:
    """Segment each file, from the cache when it holds the file; unreadable files are skipped.

    ``fresh``: paths another executor segmented in this run (counted as computed, not cached).
    """
    from tqdm.auto import tqdm

    fresh = set(fresh)
    res = Segmented([], [], [], 0)
    seen: dict[str, str] = {}
    for f in tqdm(files, desc="segment", unit="file", disable=not ctx.progress):
        if not regular_or_skip(f, res.skipped):
            continue
        digest = file_sha256(f)
        entry = stage.entry(ctx.cache, f, digest)
        ts = stage.read(entry)
        cached = ts is not None and str(f) not in fresh
        if ts is None:
            try:
                ts = stage.run(f)
            except InputError as e:
                res.skipped.append({"path": str(f), "error": str(e)})
                continue
            stage.write(entry, ts)
        res.cache_hits += cached
        if not ts:
            res.skipped.append({"path": str(f), "error": "no turns"})
            continue
        iv = ts[0].interview
        if iv in seen:
            raise InputError(f, "a unique interview name (file name) per transcript",
                             f"{iv!r} also from {seen[iv]}", hint="rename one of the files")
        seen[iv] = str(f)
        res.turns.extend(ts)
        res.inputs.append({"path": str(f), "sha256": digest, "bytes": f.stat().st_size, "interview": iv,
                           "turns": len(ts), "interviewee_turns": sum(t.is_interviewee for t in ts),
                           "cached": cached})
    if not res.inputs:
        n = len(res.skipped)
        raise ExtractorError(f"no transcript could be segmented ({n} file{'s' * (n != 1)} skipped): "
                             + "; ".join(x["error"] for x in res.skipped[:3]))
    return res


def predict_interviews(ctx: RunContext, seg: Segmented, stage: PredictStage, classifier: Classifier,
                       fresh: Iterable[str] = ()) -> None:
    """Fill ``seg.predictions``, per interview from the cache, the rest in one classifier call."""
    by_iv: dict[str, list[Turn]] = {}
    for t in seg.turns:
        by_iv.setdefault(t.interview, []).append(t)
    fresh_ivs = {i["interview"] for i in seg.inputs if i["path"] in set(fresh)}
    preds_by_iv: dict[str, list[Prediction]] = {}
    todo: list[tuple[str, Path]] = []
    for iv, ts in by_iv.items():
        entry = stage.entry(ctx.cache, ts)
        cached_preds = stage.read(entry)
        if cached_preds is None:
            todo.append((iv, entry))
        else:
            preds_by_iv[iv] = cached_preds
    if todo:
        log.info("predicting %d of %d interviews (%d cached)", len(todo), len(by_iv), len(by_iv) - len(todo))
        new = stage.run(classifier, [t for iv, _ in todo for t in by_iv[iv]], progress=ctx.progress)
        for iv, entry in todo:
            preds_by_iv[iv] = [p for p in new if p.interview == iv]
            stage.write(entry, preds_by_iv[iv])
    seg.predictions = [p for iv in by_iv for p in preds_by_iv[iv]]
    expected = sum(t.is_interviewee for t in seg.turns)
    if len(seg.predictions) != expected:
        raise ExtractorError(f"extract: expected one prediction per interviewee turn ({expected}), "
                             f"found {len(seg.predictions)}")
    seg.predict_misses = len(todo) + len(fresh_ivs - {iv for iv, _ in todo})
    seg.predict_hits = len(by_iv) - seg.predict_misses


def collect_transcripts(ctx: RunContext, files: Sequence[Path], segment: SegmentStage, predict: PredictStage,
                        classifier: Classifier, fresh: Iterable[str] = ()) -> Segmented:
    """Every transcript's turns and predictions: cached entries are read, the rest computed here."""
    fresh = set(fresh)
    seg = segment_files(ctx, files, segment, fresh)
    predict_interviews(ctx, seg, predict, classifier, fresh)
    return seg

"""Batch extraction: segment -> predict -> discover -> reports and exports, with a cache.

:func:`run_extract` runs every stage over a set of transcripts and writes ``OUT/``:
``turns.jsonl``, ``predictions.jsonl``, ``proposals.jsonl``, ``privacy.jsonl``,
``coded_segments.csv``, ``report.html`` / ``report.md`` / ``summary.json`` / ``figures/``,
``project.qdpx`` + ``codebook.qdc`` (REFI-QDA) and ``manifest.json``.

The cache (``OUT/.cache`` unless given) keeps, as JSONL/JSON/npz (never pickle):

- segmented turns per file, keyed by the file's SHA-256 and path;
- predictions per interview, keyed by the interview's turns (ids, speakers, questions:
  the classifier reads neighbouring turns as context, so a change anywhere in an
  interview re-predicts that interview), the model fingerprint and the catalog fingerprint;
- sentence embeddings for discovery (:class:`~extractor.embed.EmbeddingCache`, keyed by
  the encoder's fingerprint and the text's SHA-256);
- privacy findings per file SHA-256.

A rerun after editing one transcript therefore re-segments and re-predicts that
transcript only. :func:`run_extract` is a composition of stage functions
(:func:`segment_stage`, :func:`predict_stage`, :func:`discover_stage`,
:func:`privacy_stage`, :func:`write_outputs`); the stages' workers are injectable
(``segmenter``, ``classifier``, ``embedder``, ``discoverer``) so tests run with stand-ins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from extractor import __version__
from extractor.catalog import Catalog, load_catalog
from extractor.embed import CachedEmbedder, Embedder, EmbeddingCache, embedder_fingerprint, file_sha256, make_embedder
from extractor.errors import ExtractorError, InputError
from extractor.jsonl import enumerate_lines, read_jsonl, write_json, write_jsonl
from extractor.safeio import is_regular, open_regular
from extractor.types import Labels, Prediction, Turn

log = logging.getLogger(__name__)

CACHE_VERSION = 1
OUTPUTS = ("turns.jsonl", "predictions.jsonl", "proposals.jsonl", "privacy.jsonl", "coded_segments.csv",
           "report.html", "report.md", "summary.json", "project.qdpx", "codebook.qdc", "manifest.json")


class Classifier(Protocol):
    def predict(self, turns: Sequence[Turn], progress: bool = False) -> list[Prediction]: ...


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


# --- model loading ------------------------------------------------------------


def model_fingerprint(model_dir: str | Path) -> str:
    """SHA-256 of the model's manifest (which lists every model file's SHA-256)."""
    p = Path(model_dir) / "manifest.json"
    return file_sha256(p) if p.is_file() else _sha(str(Path(model_dir).resolve()))


def load_classifier(model_dir: str | Path | None = None, device: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Load an :class:`~extractor.classify.IssueClassifier` (default: the packaged model)
    and describe it for the manifest."""
    from extractor.classify import IssueClassifier
    from extractor.resources import packaged_model

    path = Path(model_dir) if model_dir else packaged_model()
    clf = IssueClassifier.load(path, device=device)
    card = dict(getattr(clf, "card_", {}) or {})
    info = {
        "path": str(path),
        "name": getattr(clf, "model_name", path.name),
        "fingerprint": model_fingerprint(path),
        "card": {k: card[k] for k in ("created", "base_model", "fine_tuned", "catalog", "data_sha256", "training",
                                      "metrics", "evaluation", "seed") if k in card}
        # a retrained model's card may carry another model's evaluation (older cards did): the report checks
        | ({"warm_start_from": card["warm_start_from"]} if card.get("warm_start_from") else {}),
    }
    return clf, info


def make_segmenter(interviewers: Any = None) -> Callable[[Path], list[Turn]]:
    """The default segmenter stage: one file -> its turns (``interviewers``: names, see segment_file)."""
    from extractor.segment import segment_file

    def seg(path: Path) -> list[Turn]:
        return list(segment_file(path, interviewers=interviewers).turns)

    return seg


# --- the stages ------------------------------------------------------------------


@dataclass
class ExtractResult:
    """What a run produced: the records, and the manifest written to ``OUT/manifest.json``."""

    turns: list[Turn]
    predictions: list[Prediction]
    proposals: list[Any]
    privacy: list[Any]
    manifest: dict[str, Any]
    outputs: dict[str, Path] = field(default_factory=dict)


@dataclass
class Segmented:
    """Output of :func:`segment_stage`: turns plus, per file, what the manifest records."""

    turns: list[Turn]
    inputs: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    cache_hits: int


def _check_out_dir(out: Path, force: bool) -> None:
    """Refuse to write into a non-empty directory that is not an earlier extract output."""
    if out.exists() and not out.is_dir():
        raise InputError(out, "an output directory", "a file")
    if not out.is_dir() or force or (out / "manifest.json").is_file():
        return
    others = [p.name for p in out.iterdir() if p.name != ".cache"]
    if others:
        raise InputError(out, "an empty directory or the output of an earlier `extractor extract`",
                         f"{len(others)} other entries (e.g. {sorted(others)[0]!r})",
                         hint="pick another -o directory or pass --force to write beside them")


def _read_cache(entry: Path, parse: Callable[[Mapping[str, Any]], Any]) -> list[Any] | None:
    """A cache entry's records, or None when it is absent or damaged (then it is recomputed
    and rewritten: a truncated or hand-edited entry must not block every rerun)."""
    if not entry.is_file():
        return None
    try:
        rows = [parse(d) for d in read_jsonl(entry)]
    except (InputError, KeyError, TypeError, ValueError) as e:
        log.warning("cache entry %s is damaged (%s); recomputing it", entry, e)
        return None
    return rows or None


USER_PROPOSAL_FIELDS = ("decision", "name", "definition")  # what reviewers write into proposals.jsonl


def keep_user_decisions(path: Path, proposals: Sequence[Any]) -> list[dict[str, Any]]:
    """New proposal rows, keeping what reviewers wrote into the existing ``path``.

    A rerun must not wipe decisions: for a proposal proposed again (same id) the reviewer's
    ``decision``, ``name`` and ``definition`` are kept; a decided proposal no longer proposed
    is kept as it was (at the end). A malformed existing file is an error, not overwritten.
    """
    rows = [p.to_dict() if hasattr(p, "to_dict") else dict(p) for p in proposals]
    if not path.exists():
        return rows
    try:
        old = [obj for _, obj in enumerate_lines(path)]
    except InputError as e:
        raise InputError(e.path, e.expected, e.found, line=e.line,
                         hint="it may hold review decisions: fix it, or move it away to start afresh") from None
    old_by_id = {o["id"]: o for o in old if isinstance(o.get("id"), str)}
    new_ids = set()
    for row in rows:
        new_ids.add(row.get("id"))
        prev = old_by_id.get(row.get("id"))
        if prev:
            row.update({k: prev[k] for k in USER_PROPOSAL_FIELDS if k in prev})
    rows.extend(o for o in old if o.get("id") not in new_ids and o.get("decision") not in (None, ""))
    return rows


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, plus visible files directly inside named directories, in natural order."""
    from extractor.segment import expand_paths

    files = []
    for p in map(Path, paths):
        if not p.exists():
            raise InputError(p, "a transcript file or directory", "nothing")
        files.extend(expand_paths([p]))
    return files


def segment_stage(files: Sequence[Path], segmenter: Callable[[Path], list[Turn]], cache: Path,
                  progress: bool = False) -> Segmented:
    """Segment each file (cached per file path and content); unreadable files are skipped."""
    from tqdm.auto import tqdm

    res = Segmented([], [], [], 0)
    seen: dict[str, str] = {}
    for f in tqdm(files, desc="segment", unit="file", disable=not progress):
        if not is_regular(f):  # hashing a FIFO would hang, /dev/zero never ends
            try:
                open_regular(f, what="a transcript file").close()
            except InputError as e:
                log.warning("skipped %s", e)
                res.skipped.append({"path": str(f), "error": str(e)})
                continue
        digest = file_sha256(f)
        entry = cache / "segments" / f"{_sha(str(f.resolve()), digest, str(CACHE_VERSION))[:32]}.jsonl"
        ts = _read_cache(entry, Turn.from_dict)
        cached = ts is not None
        if cached:
            res.cache_hits += 1
        else:
            try:
                ts = segmenter(f)
            except InputError as e:
                log.warning("skipped %s", e)
                res.skipped.append({"path": str(f), "error": str(e)})
                continue
            write_jsonl(entry, ts)
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


def predict_stage(turns: Sequence[Turn], classifier: Classifier, model_fp: str, catalog: Catalog, cache: Path,
                  progress: bool = False, human: Mapping[str, Labels] | None = None
                  ) -> tuple[list[Prediction], dict[str, int]]:
    """Predict per interview, cached by the interview's turns, the model and the catalog;
    reviewers' labels (``human``) replace the model's for the turns they name.

    The classifier reads neighbouring turns as context, so a change anywhere in an
    interview re-predicts that whole interview.
    """
    by_iv: dict[str, list[Turn]] = {}
    for t in turns:
        by_iv.setdefault(t.interview, []).append(t)
    cat_fp = catalog.fingerprint()
    preds_by_iv: dict[str, list[Prediction]] = {}
    todo: list[tuple[str, Path]] = []
    for iv, ts in by_iv.items():
        key = _sha(json.dumps([[t.id, t.speaker, t.question] for t in ts]), model_fp, cat_fp, str(CACHE_VERSION))
        entry = cache / "predictions" / f"{key[:32]}.jsonl"
        cached_preds = _read_cache(entry, Prediction.from_dict)
        if cached_preds is not None:
            preds_by_iv[iv] = cached_preds
        else:
            todo.append((iv, entry))
    if todo:
        log.info("predicting %d of %d interviews (%d cached)", len(todo), len(by_iv), len(by_iv) - len(todo))
        new = classifier.predict([t for iv, _ in todo for t in by_iv[iv]], progress=progress)
        for iv, entry in todo:
            preds_by_iv[iv] = [p for p in new if p.interview == iv]
            write_jsonl(entry, preds_by_iv[iv])
    predictions = [p for iv in by_iv for p in preds_by_iv[iv]]
    expected = sum(t.is_interviewee for t in turns)
    if len(predictions) != expected:
        raise ExtractorError(f"extract: expected one prediction per interviewee turn ({expected}), "
                             f"found {len(predictions)}")
    if human:
        from extractor.train import apply_human_labels

        predictions = apply_human_labels(predictions, human)
    return predictions, {"predict_hits": len(by_iv) - len(todo), "predict_misses": len(todo)}


def discover_stage(predictions: Sequence[Prediction], turns: Sequence[Turn], catalog: Catalog, embedder: Embedder,
                   cache: Path, discoverer: Callable[..., list[Any]] | None = None,
                   rejected_path: Path | None = None) -> tuple[list[Any], dict[str, int]]:
    """Propose new catalog entries, leaving out those remembered in ``rejected_path``;
    sentence embeddings go through the on-disk cache."""
    if not isinstance(embedder, CachedEmbedder):
        embedder = CachedEmbedder(embedder, EmbeddingCache(cache / "embeddings", embedder_fingerprint(embedder)))
    if discoverer is None:
        from extractor.discover import discover
        from extractor.proposals import load_rejected

        rejected = load_rejected(rejected_path) if rejected_path else ()

        def discoverer(p, t, c, e):
            return discover(p, t, c, e, rejected=rejected)

    proposals = list(discoverer(predictions, turns, catalog, embedder))
    return proposals, {"hits": embedder.cache.hits, "misses": embedder.cache.misses}


def privacy_stage(inputs: Sequence[Mapping[str, Any]], cache: Path) -> list[Any]:
    """Likely personal data per input file (cached per file content)."""
    from extractor.privacy import Finding, scan_file

    findings: list[Any] = []
    for info in inputs:
        entry = cache / "privacy" / f"{info['sha256'][:32]}.json"
        if entry.is_file():
            found = [replace(Finding(**d), file=info["path"]) for d in json.loads(entry.read_text("utf-8"))]
        else:
            found = scan_file(info["path"])
            write_json(entry, [f.to_dict() for f in found])
        findings.extend(found)
    if findings:
        log.warning("privacy: %d likely personal data in the transcripts (see report.html#privacy)", len(findings))
    return findings


def counts_of(seg: Segmented, predictions: Sequence[Prediction], proposals: Sequence[Any],
              findings: Sequence[Any], n_files: int) -> dict[str, int]:
    """The ``counts`` block of the manifest."""
    return {
        "files": n_files, "files_skipped": len(seg.skipped), "interviews": len(seg.inputs),
        "turns": len(seg.turns), "interviewee_turns": sum(t.is_interviewee for t in seg.turns),
        "predictions": len(predictions), "issue_turns": sum(bool(p.categories) for p in predictions),
        "category_labels": sum(len(p.categories) for p in predictions),
        "mitigation_turns": sum(bool(p.mitigation) for p in predictions),
        "proposals": len(proposals), "privacy_warnings": len(findings),
    }


def write_outputs(out: Path, seg: Segmented, predictions: Sequence[Prediction], proposals: Sequence[Any],
                  findings: Sequence[Any], catalog: Catalog, manifest: dict[str, Any], *, qdpx: bool,
                  created: str, timings: dict[str, float], started: float) -> dict[str, Path]:
    """Write every file of ``OUT/`` (the manifest last, so it only exists for a complete run)."""
    from extractor import report

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    outputs = {name: out / f"{name}.jsonl" for name in ("turns", "predictions", "proposals", "privacy")}
    # a rerun keeps the decisions reviewers wrote into OUT/proposals.jsonl
    rows = (seg.turns, predictions, keep_user_decisions(outputs["proposals"], proposals), findings)
    for name, records in zip(outputs, rows):
        write_jsonl(outputs[name], records)
    outputs.update(report.write_report(out, predictions, catalog, turns=seg.turns, proposals=proposals,
                                       privacy=findings, manifest=manifest))
    timings["report"] = time.perf_counter() - t0
    if qdpx:
        t0 = time.perf_counter()
        from extractor import qdpx as qd

        outputs["qdpx"], outputs["qdc"] = out / "project.qdpx", out / "codebook.qdc"
        manifest["qdpx"] = qd.export_qdpx(outputs["qdpx"], seg.turns, predictions, catalog, created=created,
                                          sources=[i["path"] for i in seg.inputs])
        qd.export_qdc(outputs["qdc"], catalog)
        timings["qdpx"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    manifest["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    manifest["outputs"] = sorted(str(p.relative_to(out)) for p in outputs.values())
    outputs["manifest"] = out / "manifest.json"
    write_json(outputs["manifest"], manifest)
    return outputs


# --- the run ---------------------------------------------------------------------


def run_extract(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    classifier: Classifier,
    catalog: Catalog | None = None,
    model_info: Mapping[str, Any] | None = None,
    segmenter: Callable[[Path], list[Turn]] | None = None,
    embedder: Embedder | None = None,
    discoverer: Callable[..., list[Any]] | None = None,
    cache_dir: str | Path | None = None,
    discover: bool = True,
    privacy: bool = True,
    qdpx: bool = True,
    progress: bool = False,
    force: bool = False,
    created: str | None = None,
    human: Mapping[str, Labels] | None = None,
) -> ExtractResult:
    """Run the batch over ``inputs`` (files and directories) and write ``out_dir``.

    Files that cannot be segmented are skipped and listed in the manifest; an
    :class:`ExtractorError` is raised when none can be. ``model_info`` must carry a
    ``fingerprint`` that changes whenever the classifier's predictions may change.
    ``embedder`` (discovery) defaults to the bundled MiniLM, loaded only on a cache miss.
    ``human`` (turn id -> reviewers' labels) replaces the model's labels of those turns.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    _check_out_dir(out, force)
    cache = Path(cache_dir) if cache_dir else out / ".cache"
    catalog = catalog or getattr(classifier, "catalog_", None) or load_catalog()
    model_info = dict(model_info or {})
    model_fp = str(model_info.get("fingerprint") or getattr(classifier, "fingerprint", "") or "")
    if not model_fp:
        raise ExtractorError("extract: the classifier has no fingerprint; pass model_info={'fingerprint': ...}")
    created = created or datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    files = expand_inputs(inputs)
    if not files:
        raise InputError(", ".join(map(str, inputs)), "transcript files", "an empty directory")

    timings: dict[str, float] = {}

    def timed(stage: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        result = fn(*args, **kw)
        timings[stage] = time.perf_counter() - t0
        return result

    seg = timed("segment", segment_stage, files, segmenter or make_segmenter(), cache, progress)
    predictions, pstats = timed("predict", predict_stage, seg.turns, classifier, model_fp, catalog, cache, progress,
                                human)
    # proposals rejected with `discover-review OUT/proposals.jsonl` are not proposed again
    from extractor.proposals import default_rejected_path

    proposals, estats = (timed("discover", discover_stage, predictions, seg.turns, catalog, embedder or make_embedder(),
                               cache, discoverer, default_rejected_path(out / "proposals.jsonl"))
                         if discover else ([], {}))
    findings = timed("privacy", privacy_stage, seg.inputs, cache) if privacy else []

    manifest: dict[str, Any] = {
        "tool": f"qi-extractor {__version__}",
        "created": created, "engine": "local",  # extractor.engine_ray records "ray"
        "model": model_info,
        "catalog": {"tag": catalog.tag, "fingerprint": catalog.fingerprint(), "path": catalog.path},
        "inputs": seg.inputs,
        "skipped": seg.skipped,
        "counts": counts_of(seg, predictions, proposals, findings, len(files)),
        "cache": {"dir": str(cache), "segment_hits": seg.cache_hits, "segment_misses": len(seg.inputs) - seg.cache_hits,
                  **pstats, "embeddings": estats},
    }
    outputs = write_outputs(out, seg, predictions, proposals, findings, catalog, manifest, qdpx=qdpx,
                            created=created, timings=timings, started=t_start)
    return ExtractResult(seg.turns, predictions, proposals, findings, manifest, outputs)

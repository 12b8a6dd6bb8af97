"""Batch extraction: the stages of :mod:`extractor.stages` run by an executor, with a cache.

:func:`run_extract` runs every stage over a set of transcripts and writes ``OUT/``:
``turns.jsonl``, ``predictions.jsonl``, ``proposals.jsonl``, ``privacy.jsonl``,
``coded_segments.csv``, ``report.html`` / ``report.md`` / ``summary.json`` / ``figures/``,
``project.qdpx`` + ``codebook.qdc`` (REFI-QDA) and ``manifest.json``.

The per-transcript stages (segment, predict) are run by an :class:`Executor`: the
:class:`LocalExecutor` in this process, or :class:`extractor.engine_ray.RayExecutor` on a
Ray cluster, as joblib runs one job on several backends. Both fill the same cache entries
(see :mod:`extractor.stages` for each stage's records, cache key and reader/writer); the
corpus stages (:func:`privacy_stage`, :func:`discover_stage`, :func:`write_outputs`: report
and export) and the one manifest writer then run here whichever executor ran the rest. A
rerun after editing one transcript re-segments and re-predicts that transcript only. The
stages' workers are injectable (``segmenter``, ``classifier``, ``embedder``, ``discoverer``)
so tests run with stand-ins.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from extractor import __version__
from extractor.catalog import Catalog
from extractor.embed import CachedEmbedder, Embedder, EmbeddingCache, embedder_fingerprint, make_embedder
from extractor.errors import InputError
from extractor.jsonl import enumerate_lines, write_json, write_jsonl
from extractor.predict import Answer
from extractor.proposals import default_rejected_path
from extractor.safeio import OUTPUT_FORMAT, check_output_dir, claim_output_dir, file_sha256, read_capped, remove_damaged
from extractor.stages import (
    CACHE_VERSION,
    Classifier,
    PredictStage,
    RunContext,
    Segmented,
    SegmentStage,
    cache_key,
    predict_interviews,
    segment_files,
)
from extractor.types import Labels, Prediction, Turn

__all__ = ["CACHE_VERSION", "ExtractResult", "Executor", "LocalExecutor", "run_extract", "load_classifier",
           "make_segmenter", "expand_inputs"]

log = logging.getLogger(__name__)

OUTPUTS = ("turns.jsonl", "predictions.jsonl", "proposals.jsonl", "privacy.jsonl", "coded_segments.csv",
           "report.html", "report.md", "summary.json", "project.qdpx", "codebook.qdc", "manifest.json")


# --- model loading ------------------------------------------------------------


def model_fingerprint(model_dir: str | Path) -> str:
    """SHA-256 of the model's manifest (which lists every model file's SHA-256)."""
    p = Path(model_dir) / "manifest.json"
    return file_sha256(p) if p.is_file() else cache_key(str(Path(model_dir).resolve()))


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


# --- the corpus stages ------------------------------------------------------------------


@dataclass
class ExtractResult:
    """What a run produced: the records, and the manifest written to ``OUT/manifest.json``."""

    turns: list[Turn]
    predictions: list[Prediction]
    proposals: list[Any]
    privacy: list[Any]
    manifest: dict[str, Any]
    outputs: dict[str, Path] = field(default_factory=dict)


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


def expand_inputs(paths: Iterable[str | Path], *, exclude: Sequence[Path] = (), follow_links: bool = False
                  ) -> tuple[list[Path], list[dict[str, str]]]:
    """Files named, plus visible files directly inside named directories, in natural order,
    and the files left out with their reason.

    Left out: anything inside ``exclude`` (the output folder and the cache, which may lie
    inside an input folder, are never read back as interviews; when the output folder is
    itself a named input folder, only the files extract writes there) and, unless
    ``follow_links``, a file found in a directory that is a link resolving outside it.
    """
    from extractor.segment import expand_paths

    named = [Path(p) for p in paths]
    dirs = {p.resolve() for p in named if p.is_dir()}
    fences: list[Path] = []
    for e in (x.resolve() for x in exclude):
        fences.extend([e / name for name in (*OUTPUTS, "figures")] if e in dirs else [e])
    files: list[Path] = []
    skipped: list[dict[str, str]] = []
    for p in named:
        if not p.exists():
            raise InputError(p, "a transcript file or directory", "nothing")
        root = p.resolve() if p.is_dir() else None
        for f in expand_paths([p]):
            real = f.resolve()
            if any(real == x or x in real.parents for x in fences):
                continue
            if root is not None and not follow_links and root not in real.parents:
                skipped.append({"path": str(f), "error": str(InputError(
                    f, f"a file inside {p}", f"a link to {real}", hint="pass --follow-links to read it"))})
                continue
            files.append(f)
    return files, skipped


def discover_stage(predictions: Sequence[Prediction], turns: Sequence[Turn], catalog: Catalog, embedder: Embedder,
                   cache: Path, discoverer: Callable[..., list[Any]] | None = None,
                   rejected_path: Path | None = None) -> tuple[list[Any], dict[str, int]]:
    """Propose new catalog entries, leaving out those remembered in ``rejected_path``;
    sentence embeddings go through the on-disk cache."""
    cached = embedder if isinstance(embedder, CachedEmbedder) else \
        CachedEmbedder(embedder, EmbeddingCache(cache / "embeddings", embedder_fingerprint(embedder)))
    if discoverer is None:
        from extractor.discover import discover
        from extractor.proposals import load_rejected

        rejected = load_rejected(rejected_path) if rejected_path else ()

        def discoverer(p, t, c, e):
            return discover(p, t, c, e, rejected=rejected)

    proposals = list(discoverer(predictions, turns, catalog, cached))
    return proposals, {"hits": cached.cache.hits, "misses": cached.cache.misses}


def read_findings(entry: Path, path: str, finding: Callable[..., Any]) -> list[Any] | None:
    """A privacy cache entry's findings (for ``path``), or None when absent or damaged (then recomputed)."""
    if not entry.exists() and not entry.is_symlink():
        return None
    try:
        rows = json.loads(read_capped(entry, 64 * 2**20, what="a privacy cache entry"))
        return [replace(finding(**d), file=path) for d in rows]
    except (InputError, ValueError, TypeError, KeyError) as e:
        log.warning("cache entry %s is damaged (%s); recomputing it", entry, e)
        remove_damaged(entry)
        return None


def privacy_stage(inputs: Sequence[Mapping[str, Any]], cache: Path) -> list[Any]:
    """Likely personal data per input file (cached per file content)."""
    from extractor.privacy import Finding, scan_file

    findings: list[Any] = []
    for info in inputs:
        entry = cache / "privacy" / f"{info['sha256'][:32]}.json"
        found = read_findings(entry, info["path"], Finding)
        if found is None:
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
    rows: tuple[Sequence[Any], ...] = (seg.turns, predictions, keep_user_decisions(outputs["proposals"], proposals),
                                       findings)
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




# --- executors ---------------------------------------------------------------------------


class Executor(Protocol):
    """Runs the per-transcript stages (segment, predict) of a run and says how, for the manifest."""

    engine: str

    def run(self, ctx: RunContext, files: Sequence[Path], segment: SegmentStage, predict: PredictStage,
            classifier: Classifier) -> Segmented: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass
class LocalExecutor:
    """Both stages in this process: segment every file, then predict the uncached interviews in one call."""

    engine: str = "local"
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, ctx: RunContext, files: Sequence[Path], segment: SegmentStage, predict: PredictStage,
            classifier: Classifier) -> Segmented:
        t0 = time.perf_counter()
        seg = segment_files(ctx, files, segment)
        t1 = time.perf_counter()
        predict_interviews(ctx, seg, predict, classifier)
        self.timings.update(segment=t1 - t0, predict=time.perf_counter() - t1)
        return seg

    def describe(self) -> dict[str, Any]:
        return {}


# --- the run ---------------------------------------------------------------------


def build_manifest(ctx: RunContext, executor: Executor, seg: Segmented, proposals: Sequence[Any],
                   findings: Sequence[Any], n_files: int, embeddings: Mapping[str, int]) -> dict[str, Any]:
    """The manifest of a run (``timings_s``, ``outputs`` and ``qdpx`` are added as the files are written)."""
    return {
        "format": OUTPUT_FORMAT,
        "tool": f"qi-extractor {__version__}",
        "created": ctx.created, "engine": executor.engine,
        "model": ctx.model_info,
        "catalog": {"tag": ctx.catalog.tag, "fingerprint": ctx.catalog.fingerprint(), "path": ctx.catalog.path},
        "inputs": seg.inputs,
        "skipped": seg.skipped,
        "counts": counts_of(seg, seg.predictions, proposals, findings, n_files),
        "cache": {"dir": str(ctx.cache), "segment_hits": seg.cache_hits,
                  "segment_misses": len(seg.inputs) - seg.cache_hits, "predict_hits": seg.predict_hits,
                  "predict_misses": seg.predict_misses, "embeddings": embeddings},
        **executor.describe(),
    }


def run_extract(inputs: Sequence[str | Path], out_dir: str | Path, *, classifier: Classifier,
                catalog: Catalog | None = None, model_info: Mapping[str, Any] | None = None,
                segmenter: Callable[[Path], list[Turn]] | None = None, embedder: Embedder | None = None,
                discoverer: Callable[..., list[Any]] | None = None, cache_dir: str | Path | None = None,
                discover: bool = True, privacy: bool = True, qdpx: bool = True, progress: bool = False,
                force: bool = False, created: str | None = None, human: Mapping[str, Labels | Answer] | None = None,
                executor: Executor | None = None, follow_links: bool = False) -> ExtractResult:
    """Run the batch over ``inputs`` (files and directories) and write ``out_dir``.

    Files that cannot be segmented are skipped and listed in the manifest; an
    :class:`ExtractorError` is raised when none can be. ``model_info`` must carry a
    ``fingerprint`` that changes whenever the classifier's predictions may change.
    ``embedder`` (discovery) defaults to the bundled MiniLM, loaded only on a cache miss.
    ``human`` (turn id -> reviewers' labels, or an :class:`~extractor.predict.Answer` with who
    and when) is taught to the classifier (``taught=``) and replaces the model's labels of
    those turns. ``executor``: who runs segment and predict
    (default :class:`LocalExecutor`).
    """
    t_start = time.perf_counter()
    ctx = RunContext.resolve(out_dir, classifier, catalog=catalog, model_info=model_info, cache_dir=cache_dir,
                             created=created, progress=progress)
    check_output_dir(ctx.out, force=force, names=(*OUTPUTS, "figures"), inputs=inputs)
    files, skipped = expand_inputs(inputs, exclude=(ctx.out, ctx.cache), follow_links=follow_links)
    if not files and not skipped:
        raise InputError(", ".join(map(str, inputs)), "transcript files", "an empty directory")
    claim_output_dir(ctx.out)  # ours from now on: a killed run does not block the plain rerun
    executor = executor or LocalExecutor()
    seg = executor.run(ctx, files, SegmentStage(segmenter or make_segmenter()),
                       PredictStage(ctx.model_fp, ctx.catalog.fingerprint(), dict(human or {})), classifier)
    seg.skipped[:0] = skipped
    timings = dict(getattr(executor, "timings", {}))
    t0 = time.perf_counter()
    proposals, estats = (discover_stage(seg.predictions, seg.turns, ctx.catalog, embedder or make_embedder(),
                                        ctx.cache, discoverer, default_rejected_path(ctx.out / "proposals.jsonl"))
                         if discover else ([], {}))
    t1 = time.perf_counter()
    findings = privacy_stage(seg.inputs, ctx.cache) if privacy else []
    timings.update({**({"discover": t1 - t0} if discover else {}), **({"privacy": time.perf_counter() - t1}
                                                                          if privacy else {})})
    manifest = build_manifest(ctx, executor, seg, proposals, findings, len(files) + len(skipped), estats)
    outputs = write_outputs(ctx.out, seg, seg.predictions, proposals, findings, ctx.catalog, manifest, qdpx=qdpx,
                            created=ctx.created, timings=timings, started=t_start)
    return ExtractResult(seg.turns, seg.predictions, proposals, findings, manifest, outputs)

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
- sentence embeddings for discovery, keyed by the embedder name and the text's SHA-1;
- privacy findings per file SHA-256.

A rerun after editing one transcript therefore re-segments and re-predicts that
transcript only. Stages are injectable (``segmenter``, ``classifier``, ``embedder``,
``discoverer``) so tests run with stand-ins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from extractor import __version__
from extractor.catalog import Catalog, load_catalog
from extractor.embed import file_sha256
from extractor.errors import ExtractorError, InputError
from extractor.jsonl import atomic_open, enumerate_lines, read_jsonl, write_json, write_jsonl
from extractor.safeio import is_regular, open_regular
from extractor.types import Prediction, Turn

log = logging.getLogger(__name__)

CACHE_VERSION = 1
OUTPUTS = ("turns.jsonl", "predictions.jsonl", "proposals.jsonl", "privacy.jsonl", "coded_segments.csv",
           "report.html", "report.md", "summary.json", "project.qdpx", "codebook.qdc", "manifest.json")


class Classifier(Protocol):
    def predict(self, turns: Sequence[Turn], progress: bool = False) -> list[Prediction]: ...


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


# --- model loading ------------------------------------------------------------


def default_model_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "models" / "default"


def model_fingerprint(model_dir: str | Path) -> str:
    """SHA-256 of the model's manifest (which lists every model file's SHA-256)."""
    p = Path(model_dir) / "manifest.json"
    return file_sha256(p) if p.is_file() else _sha(str(Path(model_dir).resolve()))


def load_classifier(model_dir: str | Path | None = None, device: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Load an :class:`~extractor.classify.IssueClassifier` and describe it for the manifest."""
    from extractor.classify import IssueClassifier

    path = Path(model_dir) if model_dir else default_model_dir()
    clf = IssueClassifier.load(path, device=device)
    card = dict(getattr(clf, "card_", {}) or {})
    info = {
        "path": str(path),
        "name": getattr(clf, "model_name", path.name),
        "fingerprint": model_fingerprint(path),
        "card": {k: card[k] for k in ("created", "base_model", "fine_tuned", "catalog", "data_sha256", "training",
                                      "metrics", "evaluation", "seed") if k in card},
    }
    return clf, info


# --- caching embedder ----------------------------------------------------------


class CachedEmbedder:
    """Wraps an :class:`~extractor.embed.Embedder`: vectors are looked up by text hash in
    an ``.npz`` file; the wrapped embedder is only built (``factory()``) on a miss."""

    def __init__(self, factory: Callable[[], Any], path: str | Path, name: str):
        self._factory = factory
        self._inner = None
        self.path = Path(path)
        self.name = name
        self._store: dict[str, np.ndarray] = {}
        self._dirty = False
        self.hits = self.misses = 0
        if self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    self._store = dict(zip(z["keys"].tolist(), z["vectors"]))
            except (OSError, ValueError, KeyError) as e:
                log.warning("%s: unreadable embedding cache (%s); starting afresh", self.path, e)

    @property
    def inner(self):
        if self._inner is None:
            self._inner = self._factory()
        return self._inner

    @property
    def dim(self) -> int:
        if self._store:
            return int(next(iter(self._store.values())).shape[0])
        return int(self.inner.dim)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        missing = list({k: t for k, t in zip(keys, texts) if k not in self._store}.items())
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            vecs = self.inner.encode([t for _, t in missing], batch_size=batch_size, progress=progress)
            for (k, _), v in zip(missing, vecs):
                self._store[k] = np.asarray(v, dtype=np.float32)
            self._dirty = True
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._store[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        if not self._dirty:
            return
        keys = sorted(self._store)
        with atomic_open(self.path, "wb") as fh:
            np.savez(fh, keys=np.array(keys, dtype="U40"), vectors=np.stack([self._store[k] for k in keys]))
        self._dirty = False


# --- the run ---------------------------------------------------------------------


@dataclass
class ExtractResult:
    """What a run produced: the records, and the manifest written to ``OUT/manifest.json``."""

    turns: list[Turn]
    predictions: list[Prediction]
    proposals: list[Any]
    privacy: list[Any]
    manifest: dict[str, Any]
    outputs: dict[str, Path] = field(default_factory=dict)


def _default_segmenter(interviewers: Any = None) -> Callable[[Path], list[Turn]]:
    from extractor.segment import segment_file

    def seg(path: Path) -> list[Turn]:
        return list(segment_file(path, interviewers=interviewers).turns)

    return seg


def embedder_factory(name: str | None = None) -> Callable[[], Any]:
    """A lazy embedder constructor for discovery: ``"hashing"`` (model-free, for tests and
    quick runs), ``None``/``"default"`` (bundled MiniLM) or a local sentence-transformers path."""
    from functools import partial

    from extractor.embed import HashingEmbedder, SentenceTransformerEmbedder

    if name == "hashing":
        f = partial(HashingEmbedder)
        f.name = "hashing"  # type: ignore[attr-defined]
    else:
        f = partial(SentenceTransformerEmbedder, None if name in (None, "", "default") else name)
        f.name = "all-MiniLM-L6-v2" if name in (None, "", "default") else Path(name).name  # type: ignore[attr-defined]
    return f


def _default_discoverer(predictions, turns, catalog, embedder, rejected_path=None):
    from extractor.discover import discover
    from extractor.proposals import load_rejected

    return discover(predictions, turns, catalog, embedder, rejected=load_rejected(rejected_path) if rejected_path else ())


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


def run_extract(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    classifier: Classifier,
    catalog: Catalog | None = None,
    model_info: Mapping[str, Any] | None = None,
    segmenter: Callable[[Path], list[Turn]] | None = None,
    embedder_factory: Callable[[], Any] | None = None,
    discoverer: Callable[..., list[Any]] | None = None,
    cache_dir: str | Path | None = None,
    discover: bool = True,
    privacy: bool = True,
    qdpx: bool = True,
    progress: bool = False,
    force: bool = False,
    created: str | None = None,
) -> ExtractResult:
    """Run the batch over ``inputs`` (files and directories) and write ``out_dir``.

    Files that cannot be segmented are skipped and listed in the manifest; an
    :class:`ExtractorError` is raised when none can be. ``model_info`` must carry a
    ``fingerprint`` that changes whenever the classifier's predictions may change.
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(out_dir)
    _check_out_dir(out, force)
    cache = Path(cache_dir) if cache_dir else out / ".cache"
    catalog = catalog or getattr(classifier, "catalog_", None) or load_catalog()
    model_info = dict(model_info or {})
    model_fp = str(model_info.get("fingerprint") or getattr(classifier, "fingerprint", "") or "")
    if not model_fp:
        raise ExtractorError("extract: the classifier has no fingerprint; pass model_info={'fingerprint': ...}")
    segmenter = segmenter or _default_segmenter()
    created = created or datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")

    files = expand_inputs(inputs)
    if not files:
        raise InputError(", ".join(map(str, inputs)), "transcript files", "an empty directory")

    # 1. segment (cached per file content and path)
    t0 = time.perf_counter()
    turns: list[Turn] = []
    inputs_info: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    seen_interviews: dict[str, str] = {}
    hits = 0
    for f in tqdm(files, desc="segment", unit="file", disable=not progress):
        if not is_regular(f):  # hashing a FIFO would hang, /dev/zero never ends
            try:
                open_regular(f, what="a transcript file").close()
            except InputError as e:
                log.warning("skipped %s", e)
                failures.append({"path": str(f), "error": str(e)})
                continue
        digest = file_sha256(f)
        entry = cache / "segments" / f"{_sha(str(f.resolve()), digest, str(CACHE_VERSION))[:32]}.jsonl"
        ts = _read_cache(entry, Turn.from_dict)
        if ts is not None:
            cached = True
            hits += 1
        else:
            try:
                ts = segmenter(f)
            except InputError as e:
                log.warning("skipped %s", e)
                failures.append({"path": str(f), "error": str(e)})
                continue
            write_jsonl(entry, ts)
            cached = False
        if not ts:
            failures.append({"path": str(f), "error": "no turns"})
            continue
        iv = ts[0].interview
        if iv in seen_interviews:
            raise InputError(f, f"a unique interview name (file name) per transcript",
                             f"{iv!r} also from {seen_interviews[iv]}", hint="rename one of the files")
        seen_interviews[iv] = str(f)
        turns.extend(ts)
        inputs_info.append({"path": str(f), "sha256": digest, "bytes": f.stat().st_size, "interview": iv,
                            "turns": len(ts), "interviewee_turns": sum(t.is_interviewee for t in ts),
                            "cached": cached})
    timings["segment"] = time.perf_counter() - t0
    if not inputs_info:
        raise ExtractorError(f"no transcript could be segmented ({len(failures)} file"
                             f"{'s' * (len(failures) != 1)} skipped): " + "; ".join(x["error"] for x in failures[:3]))

    # 2. predict (cached per interview content, model and catalog)
    t0 = time.perf_counter()
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
        batch = [t for iv, _ in todo for t in by_iv[iv]]
        new = classifier.predict(batch, progress=progress)
        for iv, entry in todo:
            preds_by_iv[iv] = [p for p in new if p.interview == iv]
            write_jsonl(entry, preds_by_iv[iv])
    predictions = [p for iv in by_iv for p in preds_by_iv[iv]]
    expected = sum(t.is_interviewee for t in turns)
    if len(predictions) != expected:
        raise ExtractorError(f"extract: expected one prediction per interviewee turn ({expected}), "
                             f"found {len(predictions)}")
    timings["predict"] = time.perf_counter() - t0

    # 3. discover (embeddings cached by text)
    t0 = time.perf_counter()
    proposals: list[Any] = []
    emb_stats: dict[str, int] = {}
    if discover:
        embedder_factory = embedder_factory or globals()["embedder_factory"]()
        emb_name = str(getattr(embedder_factory, "name", None) or "custom")
        emb = CachedEmbedder(embedder_factory, cache / "embeddings" / f"{emb_name}.npz", emb_name)
        # proposals rejected with `discover-review OUT/proposals.jsonl` are not proposed again
        from extractor.proposals import default_rejected_path

        default = partial(_default_discoverer, rejected_path=default_rejected_path(out / "proposals.jsonl"))
        proposals = list((discoverer or default)(predictions, turns, catalog, emb))
        emb.save()
        emb_stats = {"hits": emb.hits, "misses": emb.misses}
    timings["discover"] = time.perf_counter() - t0

    # 4. privacy check (cached per file content)
    t0 = time.perf_counter()
    findings: list[Any] = []
    if privacy:
        from extractor.privacy import Finding, scan_file

        for info in inputs_info:
            entry = cache / "privacy" / f"{info['sha256'][:32]}.json"
            if entry.is_file():
                found = [replace(Finding(**d), file=info["path"]) for d in json.loads(entry.read_text("utf-8"))]
            else:
                found = scan_file(info["path"])
                write_json(entry, [f.to_dict() for f in found])
            findings.extend(found)
        if findings:
            log.warning("privacy: %d likely personal data in the transcripts (see report.html#privacy)",
                        len(findings))
    timings["privacy"] = time.perf_counter() - t0

    # 5. outputs
    t0 = time.perf_counter()
    from extractor import report

    out.mkdir(parents=True, exist_ok=True)
    outputs = {"turns": out / "turns.jsonl", "predictions": out / "predictions.jsonl",
               "proposals": out / "proposals.jsonl", "privacy": out / "privacy.jsonl"}
    write_jsonl(outputs["turns"], turns)
    write_jsonl(outputs["predictions"], predictions)
    write_jsonl(outputs["proposals"], keep_user_decisions(outputs["proposals"], proposals))
    write_jsonl(outputs["privacy"], findings)
    counts = {
        "files": len(files), "files_skipped": len(failures), "interviews": len(by_iv), "turns": len(turns),
        "interviewee_turns": expected, "predictions": len(predictions),
        "issue_turns": sum(bool(p.categories) for p in predictions),
        "category_labels": sum(len(p.categories) for p in predictions),
        "mitigation_turns": sum(bool(p.mitigation) for p in predictions),
        "proposals": len(proposals), "privacy_warnings": len(findings),
    }
    manifest: dict[str, Any] = {
        "tool": f"qi-extractor {__version__}",
        "created": created,
        "model": model_info,
        "catalog": {"tag": catalog.tag, "fingerprint": cat_fp, "path": catalog.path},
        "inputs": inputs_info,
        "skipped": failures,
        "counts": counts,
        "cache": {"dir": str(cache), "segment_hits": hits, "segment_misses": len(inputs_info) - hits,
                  "predict_hits": len(by_iv) - len(todo), "predict_misses": len(todo),
                  "embeddings": emb_stats},
    }
    paths = report.write_report(out, predictions, catalog, turns=turns, proposals=proposals, privacy=findings,
                                manifest=manifest)
    outputs.update(paths)
    timings["report"] = time.perf_counter() - t0
    if qdpx:
        t0 = time.perf_counter()
        from extractor import qdpx as qd

        outputs["qdpx"] = out / "project.qdpx"
        outputs["qdc"] = out / "codebook.qdc"
        manifest["qdpx"] = qd.export_qdpx(outputs["qdpx"], turns, predictions, catalog, created=created)
        qd.export_qdc(outputs["qdc"], catalog)
        timings["qdpx"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    manifest["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    manifest["outputs"] = sorted(str(p.relative_to(out)) for p in outputs.values())
    outputs["manifest"] = out / "manifest.json"
    write_json(outputs["manifest"], manifest)
    return ExtractResult(turns, predictions, proposals, findings, manifest, outputs)

"""The Ray engine of ``extractor extract --engine ray``: the per-transcript stages on a Ray cluster.

The engine fills the per-transcript cache the local engine reads (segments per file,
predictions per interview, see :mod:`extractor.extract`) and then hands over to
:func:`extractor.extract.run_extract`, which finds every transcript cached and runs
discovery, the privacy check and the reports on the driver. The output files are
therefore the local engine's, and a rerun after a kill redoes only the transcripts
whose predictions had not been written yet.

Ray Data pipeline (streaming; the driver never holds more than one transcript's turns
while it runs)::

    paths still to do -> map(segment)            tasks, fractional CPUs
                      -> map_batches(_Predictor) actor pool: each actor loads the model once;
                                                 1 GPU per actor when the cluster has GPUs
                      -> driver: iter_rows(), write each transcript's cache entries

Inputs must be readable at the same path on every node (shared storage); only the
driver writes (``OUT`` and the cache). Ray is optional: ``pip install 'qi-extractor[scale]'``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from extractor.embed import file_sha256
from extractor.errors import ExtractorError, InputError
from extractor.extract import (CACHE_VERSION, ExtractResult, _read_cache, _sha, expand_inputs, load_classifier,
                               make_segmenter, run_extract)
from extractor.jsonl import write_json, write_jsonl
from extractor.safeio import is_regular
from extractor.types import Prediction, Turn

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'qi-extractor[scale]'"


def import_ray():
    """``ray`` and ``ray.data``, or a one-line :class:`ExtractorError` with the install hint."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ExtractorError(f"--engine ray: expected the ray package, found none ({e.name or e}); "
                             f"install it with: {INSTALL_HINT}") from None
    return ray


# --- cache keys: the same as run_extract's (a test checks the local engine hits them) ---


def segment_entry(cache: Path, path: Path, digest: str) -> Path:
    return cache / "segments" / f"{_sha(str(path.resolve()), digest, str(CACHE_VERSION))[:32]}.jsonl"


def prediction_entry(cache: Path, turns: Sequence[Turn], model_fp: str, cat_fp: str) -> Path:
    key = _sha(json.dumps([[t.id, t.speaker, t.question] for t in turns]), model_fp, cat_fp, str(CACHE_VERSION))
    return cache / "predictions" / f"{key[:32]}.jsonl"


def pending(files: Sequence[Path], cache: Path, model_fp: str, cat_fp: str) -> Iterator[dict[str, str]]:
    """The files whose segments or predictions are not cached yet, one at a time."""
    for f in files:
        if not is_regular(f):
            continue  # run_extract skips it with its reason
        digest = file_sha256(f)
        turns = _read_cache(segment_entry(cache, f, digest), Turn.from_dict)  # None: absent or damaged
        if turns and _read_cache(prediction_entry(cache, turns, model_fp, cat_fp), Prediction.from_dict) is not None:
            continue
        yield {"path": str(f), "sha256": digest}


# --- the remote stages ------------------------------------------------------------------


def _segment_row(row: dict[str, Any], segmenter: Callable[[Path], list[Turn]]) -> dict[str, Any]:
    """Ray task: one file -> its turns as a JSON string (Arrow-friendly), or the error."""
    try:
        turns = segmenter(Path(row["path"]))
        return {**row, "turns": json.dumps([t.to_dict() for t in turns]), "error": ""}
    except InputError as e:
        # the driver leaves it uncached; run_extract then skips it with the same message
        return {**row, "turns": "[]", "error": str(e)}


def _load_model(path: str, device: str | None):
    return load_classifier(path, device=device)[0]


class _Predictor:
    """Ray actor: loads the classifier once, predicts a batch of whole transcripts."""

    def __init__(self, factory: Callable[[], Any], threads: int = 0):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.clf = factory()

    def _predict(self, turns: list[Turn]) -> list[Prediction]:
        return list(self.clf.predict(turns, progress=False)) if any(t.is_interviewee for t in turns) else []

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        rows = [[Turn.from_dict(d) for d in json.loads(s)] for s in batch["turns"]]
        ivs = [ts[0].interview for ts in rows if ts]
        out: list[list[Prediction]]
        if len(set(ivs)) == len(ivs):
            # one call per batch: the classifier batches the encoder; predictions of a
            # transcript do not depend on the other transcripts in the call
            by_iv: dict[str, list[Prediction]] = {}
            for p in self._predict([t for ts in rows for t in ts]):
                by_iv.setdefault(p.interview, []).append(p)
            out = [by_iv.get(ts[0].interview, []) if ts else [] for ts in rows]
        else:  # two files with one interview name: run_extract will refuse them; do not mix them here
            out = [self._predict(ts) for ts in rows]
        return {"path": list(batch["path"]), "sha256": list(batch["sha256"]), "turns": list(batch["turns"]),
                "error": list(batch["error"]),
                "predictions": [json.dumps([p.to_dict() for p in ps]) for ps in out]}


def _predictor_class(factory: Callable[[], Any], threads: int) -> type:
    """The actor class with its model factory built in: no constructor arguments to keep in the
    object store, so Ray can restart an actor lost with its node."""

    class Predictor(_Predictor):
        def __init__(self) -> None:
            super().__init__(factory, threads)

    return Predictor


# --- resources ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How the actor pool is laid out on the cluster."""

    actors: int
    actor_cpus: float
    actor_gpus: int
    threads: int
    segment_cpus: float
    batch_transcripts: int
    device: str | None

    @classmethod
    def for_cluster(cls, resources: Mapping[str, float], *, actors: int | None = None,
                    cpus_per_actor: float = 2.0, batch_transcripts: int | None = None,
                    device: str | None = None) -> "Plan":
        """GPU actors (one GPU each) when the cluster has GPUs and ``device`` allows;
        otherwise CPU actors of ``cpus_per_actor`` CPUs, leaving a quarter CPU to segmentation."""
        cpus, gpus = float(resources.get("CPU", 1.0)), int(resources.get("GPU", 0))
        seg = 0.25
        if gpus and device in (None, "auto", "cuda"):
            n = min(actors or gpus, gpus)
            per = max(0.25, min(1.0, (cpus - seg) / n))
            return cls(n, per, 1, max(1, math.floor(per)), seg, batch_transcripts or 64, "cuda")
        per = max(0.25, min(cpus_per_actor, cpus - seg))
        n = actors or max(1, int((cpus - seg) // per))
        return cls(n, per, 0, max(1, math.ceil(per)), seg, batch_transcripts or 16,
                   "cpu" if device in (None, "auto", "cuda") else device)


def _init_ray(ray, address: str | None, num_cpus: int | None) -> bool:
    """Join ``address`` or start a quiet local Ray; True when this call started it."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                              configure_logging=True)
    try:
        if address:
            _reachable(address)
            ray.init(address=address, **kw)
        else:
            # "local": a new Ray of our own even when `ray start` runs on this machine
            ray.init(address="local", num_cpus=num_cpus, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"a running Ray cluster at {address} (`ray start --head`)" if address else "a local Ray to start"
        raise ExtractorError(f"--engine ray: expected {where}, found {str(e).splitlines()[0] if str(e) else e!r}") \
            from None
    return True


def _cause(e: BaseException) -> str:
    """The remote error's own last line (``ModelError: ...``), not Ray's traceback."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.startswith(" ")]
    for ln in reversed(lines):
        if "Error" in ln.split(":")[0]:
            return ln
    return lines[-1] if lines else type(e).__name__


def _reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (ray.init would retry for minutes)."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "ray://...": Ray's own checks
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"no Ray head answering ({e.strerror or e})") from None


def _quiet_ray_data(ray, progress: bool) -> None:
    import warnings

    with warnings.catch_warnings():  # Ray's own deprecated fields, set when the context is made
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver shows one bar over transcripts instead
    for name in ("enable_operator_progress_bars", "print_on_execution_start"):
        if hasattr(ctx, name):
            setattr(ctx, name, False)
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


# --- the run --------------------------------------------------------------------------------


def run_extract_ray(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    classifier: Any = None,
    model_info: Mapping[str, Any] | None = None,
    classifier_factory: Callable[[], Any] | None = None,
    segmenter: Callable[[Path], list[Turn]] | None = None,
    cache_dir: str | Path | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 2.0,
    batch_transcripts: int | None = None,
    device: str | None = None,
    progress: bool = False,
    force: bool = False,
    **kwargs: Any,
) -> ExtractResult:
    """:func:`~extractor.extract.run_extract` with segmentation and prediction on Ray.

    ``classifier`` (loaded on the driver for its catalog; never asked to predict) and
    ``model_info`` are as for ``run_extract``; the actors build their own with
    ``classifier_factory`` (default: load ``model_info["path"]`` on the actor's device).
    Other keyword arguments go to ``run_extract`` unchanged.
    """
    from tqdm.auto import tqdm

    from extractor.extract import _check_out_dir

    ray = import_ray()
    t_start = time.perf_counter()
    out = Path(out_dir)
    _check_out_dir(out, force)  # fail before starting a cluster
    cache = Path(cache_dir) if cache_dir else out / ".cache"
    model_info = dict(model_info or {})
    if classifier is None:
        classifier, loaded = load_classifier(model_info.get("path"), device="cpu")
        model_info = {**loaded, **model_info}
    catalog = kwargs.get("catalog") or classifier.catalog_
    model_fp = str(model_info.get("fingerprint") or getattr(classifier, "fingerprint", "") or "")
    if not model_fp:
        raise ExtractorError("extract: the classifier has no fingerprint; pass model_info={'fingerprint': ...}")
    segmenter = segmenter or make_segmenter()
    files = expand_inputs(inputs)
    todo = list(pending(files, cache, model_fp, catalog.fingerprint()))  # paths only

    started = False
    stats: dict[str, Any] = {"address": address or "local", "transcripts_sent": len(todo)}
    t0 = time.perf_counter()
    if todo:
        started = _init_ray(ray, address, num_cpus)
        try:
            _quiet_ray_data(ray, progress)
            plan = Plan.for_cluster(ray.cluster_resources(), actors=actors, cpus_per_actor=cpus_per_actor,
                                    batch_transcripts=batch_transcripts, device=device)
            factory = classifier_factory or partial(_load_model, str(model_info.get("path") or ""), plan.device)
            stats.update(actors=plan.actors, actor_cpus=plan.actor_cpus, actor_gpus=plan.actor_gpus,
                         threads_per_actor=plan.threads, batch_transcripts=plan.batch_transcripts,
                         cluster={k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")})
            ds = (ray.data.from_items(todo)
                  .map(_segment_row, fn_kwargs={"segmenter": segmenter}, num_cpus=plan.segment_cpus)
                  .map_batches(_predictor_class(factory, plan.threads),
                               batch_size=plan.batch_transcripts, batch_format="pandas",
                               compute=ray.data.ActorPoolStrategy(size=plan.actors),
                               num_cpus=plan.actor_cpus, num_gpus=plan.actor_gpus or None))
            done = 0
            cat_fp = catalog.fingerprint()
            rows = tqdm(ds.iter_rows(), total=len(todo), desc="ray: segment+predict", unit="transcript",
                        disable=not progress)
            try:
                for row in rows:
                    if row["error"]:
                        continue
                    turns = [Turn.from_dict(d) for d in json.loads(row["turns"])]
                    if turns:
                        preds = [Prediction.from_dict(d) for d in json.loads(row["predictions"])]
                        write_jsonl(prediction_entry(cache, turns, model_fp, cat_fp), preds)
                    # the segment entry last: a transcript counts as done once both exist
                    write_jsonl(segment_entry(cache, Path(row["path"]), row["sha256"]), turns)
                    done += 1
            except ray.exceptions.RayError as e:
                raise ExtractorError(f"--engine ray: expected the actors to load the model and predict, found "
                                     f"{_cause(e)} ({done} of {len(todo)} transcripts written; rerun to resume)") \
                    from None
            stats["transcripts_done"] = done
        finally:
            if started:
                ray.shutdown()
    stats["ray_s"] = round(time.perf_counter() - t0, 3)

    def must_not_predict(turns, progress=False, **kw):
        raise ExtractorError("--engine ray: the local cache keys differ from the Ray engine's "
                             f"({len(turns)} turns left to predict); this is a bug, please report it")

    guard = _Guard(classifier, must_not_predict)
    res = run_extract(inputs, out, classifier=guard, model_info=model_info, segmenter=segmenter, cache_dir=cache,
                      progress=progress, force=force, **kwargs)
    # the final pass found Ray's work in the cache: tell the manifest what this run did
    sent = {r["path"] for r in todo}
    m = res.manifest
    for info in m["inputs"]:
        info["cached"] = info["path"] not in sent
    m["engine"] = "ray"
    m["ray"] = stats
    predicted = sum(1 for info in m["inputs"] if not info["cached"])
    m["cache"].update(segment_hits=len(m["inputs"]) - predicted, segment_misses=predicted,
                      predict_hits=len(m["inputs"]) - predicted, predict_misses=predicted)
    m["timings_s"]["ray_segment_predict"] = stats["ray_s"]
    m["timings_s"]["total"] = round(time.perf_counter() - t_start, 3)
    write_json(out / "manifest.json", m)
    return res


class _Guard:
    """The driver's classifier as run_extract sees it: its catalog and fingerprint, no predictions."""

    def __init__(self, inner: Any, predict: Callable[..., list[Prediction]]):
        self.catalog_ = getattr(inner, "catalog_", None)
        self.fingerprint = getattr(inner, "fingerprint", "")
        self.predict = predict

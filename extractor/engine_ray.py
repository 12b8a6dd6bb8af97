"""The Ray executor of ``extractor extract --engine ray``: the per-transcript stages on a Ray cluster.

:class:`RayExecutor` is the second executor of the stages of :mod:`extractor.stages`
(beside :class:`extractor.extract.LocalExecutor`): it runs the same
:class:`~extractor.stages.SegmentStage` and :class:`~extractor.stages.PredictStage` on the
cluster and writes their cache entries with the stages' own writers; then
:func:`~extractor.stages.collect_transcripts` gathers every transcript from the cache as the
local executor would, and :func:`extractor.extract.run_extract` runs discovery, the privacy
check, the reports and the one manifest writer on the driver. The output files are
therefore the local engine's, and a rerun after a kill redoes only the transcripts whose
predictions had not been written yet.

Ray Data pipeline (streaming; the driver never holds more than one transcript's turns
while it runs)::

    paths still to do -> map(segment)            tasks, fractional CPUs
                      -> map_batches(Predictor)  actor pool: each actor loads the model once;
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
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from extractor.errors import ExtractorError, InputError
from extractor.extract import ExtractResult, load_classifier, run_extract
from extractor.safeio import file_sha256, is_regular
from extractor.stages import PredictStage, RunContext, Segmented, SegmentStage, collect_transcripts
from extractor.types import Prediction, Turn

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'qi-extractor[scale]'"
CONNECT_TIMEOUT_S = 20.0  # nobody answering at the address: a one-line error after this long
JOIN_TIMEOUT_S = 120.0  # a head that answers but does not let us join (a busy head may need a minute)


def import_ray():
    """``ray`` and ``ray.data``, or a one-line :class:`ExtractorError` with the install hint."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ExtractorError(f"--engine ray: expected the ray package, found none ({e.name or e}); "
                             f"install it with: {INSTALL_HINT}") from None
    return ray


def pending(ctx: RunContext, files: Sequence[Path], segment: SegmentStage, predict: PredictStage
            ) -> Iterator[dict[str, str]]:
    """The files whose segments or predictions are not cached yet, one at a time."""
    for f in files:
        if not is_regular(f):
            continue  # collect_transcripts skips it with its reason
        digest = file_sha256(f)
        turns = segment.read(segment.entry(ctx.cache, f, digest))  # None: absent or damaged
        if turns and predict.read(predict.entry(ctx.cache, turns)) is not None:
            continue
        yield {"path": str(f), "sha256": digest}


# --- the remote stages ------------------------------------------------------------------


def segment_row(row: dict[str, Any], segment: SegmentStage) -> dict[str, Any]:
    """Ray task: one file -> its turns as a JSON string (Arrow-friendly), or the error."""
    try:
        turns = segment.run(Path(row["path"]))
        return {**row, "turns": json.dumps([t.to_dict() for t in turns]), "error": ""}
    except InputError as e:
        # the driver leaves it uncached; collect_transcripts then skips it with the same message
        return {**row, "turns": "[]", "error": str(e)}


def load_model(path: str, device: str | None):
    """The classifier at ``path`` on ``device`` (what each actor runs by default)."""
    return load_classifier(path, device=device)[0]


class Predictor:
    """Ray actor: loads the classifier once, runs the predict stage over a batch of whole transcripts."""

    def __init__(self, factory: Callable[[], Any], predict: PredictStage, threads: int = 0):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.clf = factory()
        self.stage = predict

    def predict(self, turns: list[Turn]) -> list[Prediction]:
        return self.stage.run(self.clf, turns) if any(t.is_interviewee for t in turns) else []

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        rows = [[Turn.from_dict(d) for d in json.loads(s)] for s in batch["turns"]]
        ivs = [ts[0].interview for ts in rows if ts]
        out: list[list[Prediction]]
        if len(set(ivs)) == len(ivs):
            # one call per batch: the classifier batches the encoder; predictions of a
            # transcript do not depend on the other transcripts in the call
            by_iv: dict[str, list[Prediction]] = {}
            for p in self.predict([t for ts in rows for t in ts]):
                by_iv.setdefault(p.interview, []).append(p)
            out = [by_iv.get(ts[0].interview, []) if ts else [] for ts in rows]
        else:  # two files with one interview name: the driver will refuse them; do not mix them here
            out = [self.predict(ts) for ts in rows]
        return {"path": list(batch["path"]), "sha256": list(batch["sha256"]), "turns": list(batch["turns"]),
                "error": list(batch["error"]),
                "predictions": [json.dumps([p.to_dict() for p in ps]) for ps in out]}


def predictor_class(factory: Callable[[], Any], predict: PredictStage, threads: int) -> type:
    """The actor class with its model factory built in: no constructor arguments to keep in the
    object store, so Ray can restart an actor lost with its node."""

    class BoundPredictor(Predictor):
        def __init__(self) -> None:
            super().__init__(factory, predict, threads)

    return BoundPredictor


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
                    device: str | None = None) -> Plan:
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


def cluster_address(address: str) -> str:
    """``HOST:PORT`` of the cluster ``address`` names: ``auto`` is ``$RAY_ADDRESS`` or the address
    ``ray start`` left in its cluster file (which may be stale: the caller checks it answers)."""
    if address != "auto":
        return address
    env = os.environ.get("RAY_ADDRESS", "")
    if env and env != "auto":
        return env
    import tempfile

    found = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    text = found.read_text("utf-8", errors="replace").strip() if is_regular(found) else ""
    if not text:
        raise ConnectionError("no running cluster ($RAY_ADDRESS unset, no cluster file of `ray start`)")
    return text.splitlines()[0].strip()


def reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast on a HOST:PORT nobody listens on (ray.init would retry for minutes)."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "ray://...": Ray's own checks, under the timeout of init_ray
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"no Ray head answering ({e.strerror or e})") from None


def init_ray(ray, address: str | None, num_cpus: int | None, timeout: float = CONNECT_TIMEOUT_S,
             join_timeout: float = JOIN_TIMEOUT_S) -> bool:
    """Join ``address`` or start a quiet local Ray; True when this call started it.

    A one-line :class:`ExtractorError` when nobody answers at the address within ``timeout``
    seconds (a stale ``auto`` cluster file, a head that is gone) or the join has not finished
    after ``join_timeout``; Ray's own log lines stay out of the terminal unless ``-v``.
    """
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    verbose = logging.getLogger("extractor").isEnabledFor(logging.DEBUG)
    kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=verbose,
                              logging_level=logging.INFO if verbose else logging.ERROR, configure_logging=True)
    try:
        if address:
            target = cluster_address(address)
            reachable(target, timeout)
            call_with_timeout(partial(join, ray, target, kw), join_timeout, "joining the cluster")
        else:
            # "local": a new Ray of our own even when `ray start` runs on this machine
            ray.init(address="local", num_cpus=num_cpus, **kw)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        raise join_error(address, e) from None
    return True


def join(ray, target: str, kw: dict[str, Any]) -> None:
    """``ray.init`` at ``target``, again every 2 s while the head answers but is not ready yet
    (just started: its node not registered); the caller's timer ends the attempts."""
    while True:
        try:
            ray.init(address=target, **kw)
            return
        except ConnectionError:
            reachable(target, 5.0)  # gone: fail now, with that reason
            time.sleep(2.0)


def join_error(address: str | None, e: BaseException) -> ExtractorError:
    """Why joining (or starting) Ray failed, in one line."""
    where = f"a running Ray cluster at {address} (`ray start --head`)" if address else "a local Ray to start"
    return ExtractorError(f"--engine ray: expected {where}, found {str(e).splitlines()[0] if str(e) else e!r}")


def check_cluster(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail in one line, before a model is loaded, when nobody answers at ``address``."""
    try:
        reachable(cluster_address(address), timeout)
    except ConnectionError as e:
        raise join_error(address, e) from None


@contextmanager
def stderr_to(path: Path | None) -> Iterator[None]:
    """Send what Ray's processes and C++ core print on file descriptor 2 to ``path`` (the
    driver's own messages and progress bar still reach the terminal); ``None``: leave it."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    old = sys.stderr
    try:
        os.dup2(log_fd, 2)
        sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1)
        yield
    finally:
        sys.stderr.flush()
        if sys.stderr is not old:
            sys.stderr.close()
        sys.stderr = old
        os.dup2(saved, 2)
        os.close(saved)
        os.close(log_fd)


def call_with_timeout(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    """``fn()``, or :class:`TimeoutError` once it has run ``timeout`` seconds.

    A timer signal interrupts the wait (``ray.init`` must run on the main thread: in another
    thread its connection fails); off the main thread, or without ``SIGALRM``, ``fn`` runs
    without a limit.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return fn()

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer after {timeout:g}s {what}")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def remote_cause(e: BaseException) -> str:
    """The remote error's own last line (``ModelError: ...``), not Ray's traceback."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.startswith(" ")]
    for ln in reversed(lines):
        if "Error" in ln.split(":")[0]:
            return ln
    return lines[-1] if lines else type(e).__name__


def quiet_ray_data(ray) -> None:
    """No Ray Data progress bars or start lines: the driver shows one bar over transcripts."""
    import warnings

    with warnings.catch_warnings():  # Ray's own deprecated fields, set when the context is made
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    for name in ("enable_operator_progress_bars", "print_on_execution_start"):
        if hasattr(ctx, name):
            setattr(ctx, name, False)
    if not logging.getLogger("extractor").isEnabledFor(logging.DEBUG):
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)


# --- the executor -------------------------------------------------------------------------------


@dataclass
class RayExecutor:
    """The segment and predict stages on a Ray cluster (a local Ray without ``address``).

    The actors build their classifier with ``classifier_factory`` (default: load
    ``model_path`` on the actor's device); the driver's classifier predicts nothing
    unless a transcript was left unpredicted by the cluster.
    """

    address: str | None = None
    num_cpus: int | None = None
    actors: int | None = None
    cpus_per_actor: float = 2.0
    batch_transcripts: int | None = None
    device: str | None = None
    model_path: str = ""
    classifier_factory: Callable[[], Any] | None = None
    engine: str = "ray"
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def run(self, ctx: RunContext, files: Sequence[Path], segment: SegmentStage, predict: PredictStage,
            classifier: Any) -> Segmented:
        todo = list(pending(ctx, files, segment, predict))  # paths only
        self.stats = {"address": self.address or "local", "transcripts_sent": len(todo)}
        t0 = time.perf_counter()
        if todo:
            self.stats["transcripts_done"] = self.fill_cache(ctx, todo, segment, predict)
        self.stats["ray_s"] = round(time.perf_counter() - t0, 3)
        t1 = time.perf_counter()
        seg = collect_transcripts(ctx, files, segment, predict, classifier, fresh={r["path"] for r in todo})
        self.timings.update(ray_segment_predict=self.stats["ray_s"], collect=time.perf_counter() - t1)
        return seg

    def describe(self) -> dict[str, Any]:
        return {"ray": self.stats}

    def fill_cache(self, ctx: RunContext, todo: list[dict[str, str]], segment: SegmentStage,
                   predict: PredictStage) -> int:
        """Segment and predict ``todo`` on the cluster, writing each transcript's cache entries."""
        ray = import_ray()
        verbose = logging.getLogger("extractor").isEnabledFor(logging.DEBUG)
        with stderr_to(None if verbose else ctx.cache / "ray.log"):
            started = init_ray(ray, self.address, self.num_cpus)
            try:
                quiet_ray_data(ray)
                rows = self.dataset(ray, todo, segment, predict).iter_rows()
                return write_rows(ctx, rows, len(todo), segment, predict, ray.exceptions.RayError)
            finally:
                if started:
                    ray.shutdown()

    def dataset(self, ray, todo: list[dict[str, str]], segment: SegmentStage, predict: PredictStage):
        plan = Plan.for_cluster(ray.cluster_resources(), actors=self.actors, cpus_per_actor=self.cpus_per_actor,
                                batch_transcripts=self.batch_transcripts, device=self.device)
        factory = self.classifier_factory or partial(load_model, self.model_path, plan.device)
        self.stats.update(actors=plan.actors, actor_cpus=plan.actor_cpus, actor_gpus=plan.actor_gpus,
                          threads_per_actor=plan.threads, batch_transcripts=plan.batch_transcripts,
                          cluster={k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")})
        return (ray.data.from_items(todo)
                .map(segment_row, fn_kwargs={"segment": segment}, num_cpus=plan.segment_cpus)
                .map_batches(predictor_class(factory, predict, plan.threads),
                             batch_size=plan.batch_transcripts, batch_format="pandas",
                             compute=ray.data.ActorPoolStrategy(size=plan.actors),
                             num_cpus=plan.actor_cpus, num_gpus=plan.actor_gpus or None))


def write_rows(ctx: RunContext, rows: Iterator[dict[str, Any]], total: int, segment: SegmentStage,
               predict: PredictStage, remote_error: type[BaseException]) -> int:
    """Write each finished transcript's cache entries with the stages' writers; the count written."""
    from tqdm.auto import tqdm

    done = 0
    try:
        for row in tqdm(rows, total=total, desc="ray: segment+predict", unit="transcript", disable=not ctx.progress):
            if row["error"]:
                continue
            turns = [Turn.from_dict(d) for d in json.loads(row["turns"])]
            if turns:
                preds = [Prediction.from_dict(d) for d in json.loads(row["predictions"])]
                predict.write(predict.entry(ctx.cache, turns), preds)
            # the segment entry last: a transcript counts as done once both exist
            segment.write(segment.entry(ctx.cache, Path(row["path"]), row["sha256"]), turns)
            done += 1
    except remote_error as e:
        raise ExtractorError(f"--engine ray: expected the actors to load the model and predict, found "
                             f"{remote_cause(e)} ({done} of {total} transcripts written; rerun to resume)") from None
    return done


def run_extract_ray(inputs: Sequence[str | Path], out_dir: str | Path, *, classifier: Any = None,
                    model_info: Mapping[str, Any] | None = None, address: str | None = None,
                    num_cpus: int | None = None, actors: int | None = None, cpus_per_actor: float = 2.0,
                    batch_transcripts: int | None = None, device: str | None = None,
                    classifier_factory: Callable[[], Any] | None = None, **kwargs: Any) -> ExtractResult:
    """:func:`~extractor.extract.run_extract` with the :class:`RayExecutor`.

    ``classifier`` (default: ``model_info["path"]`` loaded on the driver's CPU, for its
    catalog and fingerprint) and ``model_info`` are as for ``run_extract``; the other
    keyword arguments go to ``run_extract`` unchanged.
    """
    import_ray()  # the install hint before loading a model
    model_info = dict(model_info or {})
    if classifier is None:
        classifier, loaded = load_classifier(model_info.get("path"), device="cpu")
        model_info = {**loaded, **model_info}
    executor = RayExecutor(address=address, num_cpus=num_cpus, actors=actors, cpus_per_actor=cpus_per_actor,
                           batch_transcripts=batch_transcripts, device=device,
                           model_path=str(model_info.get("path") or ""), classifier_factory=classifier_factory)
    return run_extract(inputs, out_dir, classifier=classifier, model_info=model_info, executor=executor, **kwargs)

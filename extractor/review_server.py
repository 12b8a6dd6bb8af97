"""A web reviewer for review queues: ``extractor review serve QUEUE [--port N]``.

One task at a time in the browser (the question, the turns around it, the model's likely
options first and the rest on demand, keyboard shortcuts, undo, progress), served on the
loopback address only. Answers go through :mod:`extractor.review_session`, the locked writer
the terminal reviewer uses, so the same queue can be worked on from a terminal session and
several browser tabs at once; tasks are handed out by turn id and a task answered elsewhere
is not shown again.

Flask (a small, long-kept WSGI library with a test client) serves one self-contained page
(``extractor/data/review/``: HTML with its CSS and vanilla JS inlined, no external requests)
and a small JSON API. Requests must name the server itself (Host ``127.0.0.1:PORT`` or
``localhost:PORT``) to stop DNS rebinding; writes must come from the page itself (Origin
check, JSON body) to stop cross-site requests.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from extractor.catalog import Catalog, load_catalog
from extractor.errors import ExtractorError
from extractor.review import now_iso
from extractor.review_session import (answer_task, describe_answer, likely_options, option_kind, queue_view,
                                      read_queue, save_answer, undo_answer)

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # never configurable: the queue holds interview text
DEFAULT_PORT = 8765
CLAIM_S = 120.0  # a task shown in one tab is not handed to another for this long (tabs refresh it)


@dataclass
class _Event:
    tab: str
    task_id: str
    kind: str  # "answer" | "skip"
    written: str = ""
    replaced: str | None = None
    accept: tuple[str, ...] = ()


class ReviewState:
    """The reviewer's logic, independent of HTTP: which task a tab sees, answers, skips, undo.

    ``tab`` is an id each browser tab makes up (kept across reloads), so a reload resumes
    on the same task and two tabs are not handed the same one.
    """

    def __init__(self, path: str | Path, annotator: str, catalog: Catalog | None = None, *,
                 clock: Callable[[], str] = now_iso, monotonic: Callable[[], float] = time.monotonic):
        if not annotator:
            raise ExtractorError("an annotator name is needed (--annotator NAME)")
        self.path = Path(path)
        self.annotator = annotator
        self.catalog = catalog or load_catalog()
        self.clock = clock
        self.monotonic = monotonic
        self.lock = threading.RLock()
        self.history: list[_Event] = []
        self.skipped: list[str] = []
        self.claims: dict[str, tuple[str, float]] = {}  # task id -> (tab, when)
        self.current: dict[str, str] = {}  # tab -> task id it shows
        self.restore: dict[str, list[str]] = {}  # tab -> selection to show again after an undo
        self._view_key: tuple[int, int, int] | None = None
        self._view_cache = None
        self._view()  # a malformed queue fails at start, not on the first click

    # -- reading --

    def _view(self):
        """The queue as this annotator sees it; re-parsed only when the file changed."""
        try:
            st = self.path.stat()
            key = (st.st_ino, st.st_mtime_ns, st.st_size)  # writers replace the file: a new inode
        except OSError:
            key = None
        if key is None or key != self._view_key:
            self._view_cache = queue_view(read_queue(self.path, self.catalog), self.annotator)
            self._view_key = key
        return self._view_cache

    def _claimed_elsewhere(self, task_id: str, tab: str) -> bool:
        owner = self.claims.get(task_id)
        return bool(owner and owner[0] != tab and self.monotonic() - owner[1] < CLAIM_S)

    def _pick(self, view, tab: str) -> str | None:
        pending = view.pending()
        mine = self.current.get(tab)
        if mine in pending:
            return mine
        fresh = [t for t in pending if t not in self.skipped]
        for t in fresh:
            if not self._claimed_elsewhere(t, tab):
                return t
        if fresh:
            return fresh[0]
        # Only skipped tasks are left: they come back, oldest skip first.
        for t in self.skipped:
            if t in pending:
                return t
        return None

    def state(self, tab: str, message: str = "") -> dict[str, Any]:
        """What the tab shows now: its task (or none left), progress and a message."""
        with self.lock:
            view = self._view()
            task_id = self._pick(view, tab)
            if task_id is not None:
                self.current[tab] = task_id
                self.claims[task_id] = (tab, self.monotonic())
            else:
                self.current.pop(tab, None)
            pending = view.pending()
            out: dict[str, Any] = {
                "annotator": self.annotator,
                "queue": self.path.name,
                "progress": {"done": len(view.done), "total": view.total,
                             "skipped": sum(1 for t in self.skipped if t in pending)},
                "message": message,
                "can_undo": any(e.tab == tab for e in self.history),
                "task": None,
            }
            if task_id is not None:
                out["task"] = self._task_json(view.tasks[task_id], self.restore.pop(tab, None)
                                              if self.current.get(tab) == task_id else None)
            return out

    @staticmethod
    def _task_json(task: dict[str, Any], selection: list[str] | None) -> dict[str, Any]:
        meta = task.get("meta") or {}
        ctx = task.get("context") or {}
        likely = likely_options(task)
        rank = {oid: k for k, oid in enumerate(likely)}

        def turn(t: Any) -> dict[str, Any] | None:
            if not isinstance(t, dict) or not t.get("text"):
                return None
            return {"speaker": str(t.get("speaker") or "?"), "text": str(t["text"]), "turn": t.get("turn")}

        prev = turn(ctx.get("previous"))
        question = ctx.get("question") or ""
        if prev and prev["text"] == question:
            prev = None  # the previous turn is the question itself: shown once
        options = []
        for o in task.get("options") or []:
            s = o.get("score")
            options.append({"id": o["id"], "text": str(o.get("text") or o["id"]), "kind": option_kind(o["id"]),
                            "score": float(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else None,
                            "likely": o["id"] in rank})
        options.sort(key=lambda o: rank.get(o["id"], len(rank)))  # stable: the rest keep catalog order
        return {
            "id": meta.get("id"), "interview": meta.get("interview"), "turn": meta.get("turn"),
            "model": meta.get("model"), "text": str(task.get("text") or ""), "question": str(question),
            "previous": prev, "next": turn(ctx.get("next")), "options": options,
            "predicted": list(task.get("predicted") or task.get("accept") or []),
            "selection": list(selection if selection is not None else task.get("accept") or []),
        }

    # -- writing --

    def answer(self, tab: str, task_id: str, answer: str, accept: list[str]) -> dict[str, Any]:
        """Save ``answer`` on ``task_id`` for this annotator; the next state for ``tab``."""
        if answer not in ("accept", "reject"):
            raise ValueError("answer: expected accept or reject")
        with self.lock:
            view = self._view()
            task = view.tasks.get(task_id)
            if task is None:
                raise LookupError(f"no task {task_id!r} in {self.path.name}")
            ids = {o["id"] for o in task.get("options") or []}
            unknown = [a for a in accept if a not in ids]
            if unknown:
                raise ValueError(f"accept: expected options of task {task_id}, found {unknown[:3]}")
            again = task_id in view.done
            answered = answer_task(task, answer, accept, self.annotator, self.clock())
            written, replaced = save_answer(self.path, answered, self.catalog)
            self.history.append(_Event(tab, task_id, "answer", written, replaced, tuple(answered["accept"])))
            self._release(task_id)
            meta = task.get("meta") or {}
            msg = f"saved: {describe_answer(answered)} | {meta.get('interview', '?')} turn {meta.get('turn', '?')}"
            if again:
                msg += " (answered again: the latest answer counts)"
            return self.state(tab, msg)

    def skip(self, tab: str, task_id: str) -> dict[str, Any]:
        with self.lock:
            view = self._view()
            if task_id not in view.tasks:
                raise LookupError(f"no task {task_id!r} in {self.path.name}")
            if task_id in self.skipped:
                self.skipped.remove(task_id)
            self.skipped.append(task_id)
            self.history.append(_Event(tab, task_id, "skip"))
            self._release(task_id)
            meta = view.tasks[task_id].get("meta") or {}
            return self.state(tab, f"skipped: {meta.get('interview', '?')} turn {meta.get('turn', '?')} "
                                   "(comes back when the others are done)")

    def undo(self, tab: str) -> dict[str, Any]:
        """Take back this tab's last answer or skip; that task is shown again."""
        with self.lock:
            k = next((k for k in range(len(self.history) - 1, -1, -1) if self.history[k].tab == tab), None)
            if k is None:
                return self.state(tab, "nothing to undo in this tab")
            ev = self.history.pop(k)
            if ev.kind == "answer":
                if not undo_answer(self.path, ev.written, ev.replaced, self.catalog):
                    return self.state(tab, "that answer is no longer in the queue; nothing undone")
                self.restore[tab] = list(ev.accept) if ev.accept else []
                what = "answer"
            else:
                if ev.task_id in self.skipped:
                    self.skipped.remove(ev.task_id)
                what = "skip"
            self.current[tab] = ev.task_id
            return self.state(tab, f"undone: the {what} is taken back")

    def _release(self, task_id: str) -> None:
        self.claims.pop(task_id, None)
        for tab, t in list(self.current.items()):
            if t == task_id:
                del self.current[tab]


# --- the web layer -------------------------------------------------------------------------------


def _asset(name: str) -> str:
    return (resources.files("extractor") / "data" / "review" / name).read_text(encoding="utf-8")


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render_page() -> tuple[str, str]:
    """The page (CSS and JS inlined) and its Content-Security-Policy (only those inline blocks run)."""
    css, js = _asset("review.css"), _asset("review.js")
    html = _asset("index.html").replace("/*STYLE*/", css).replace("/*SCRIPT*/", js)
    csp = (f"default-src 'none'; style-src {_sha(css)}; script-src {_sha(js)}; connect-src 'self'; "
           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


def create_app(state: ReviewState, port: int, proposals: str | Path | None = None):
    """The Flask app around ``state``; only requests to ``127.0.0.1:port`` / ``localhost:port`` pass."""
    try:
        from flask import Flask, abort, jsonify, request
    except ImportError:  # pragma: no cover - depends on the install
        raise ExtractorError("the web reviewer needs Flask; install it with `pip install 'qi-extractor[review]'` "
                             "(or `pip install flask`), or use `extractor review annotate`") from None

    app = Flask(__name__, static_folder=None)
    app.config["QI_PORT"] = port
    page, csp = render_page()
    if proposals is not None:  # the proposals view (extractor.review_proposals), at /proposals
        from extractor.review_proposals import register

        register(app, proposals, state.catalog, state.annotator)

    def allowed_hosts() -> set[str]:
        p = app.config["QI_PORT"]
        return {f"127.0.0.1:{p}", f"localhost:{p}"}

    @app.before_request
    def guard():
        if request.host not in allowed_hosts():
            abort(403, f"Host {request.host!r} is not this reviewer (http://127.0.0.1:{app.config['QI_PORT']}/)")
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("Origin")
            if origin is None or origin.removeprefix("http://") not in allowed_hosts():
                abort(403, "cross-origin write refused (Origin must be this reviewer)")
            if request.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin":
                abort(403, "cross-site write refused")
            if not request.is_json:
                abort(415, "expected a JSON body")

    @app.after_request
    def headers(resp):
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Content-Security-Policy", csp)  # a view may set its own
        return resp

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(409)
    @app.errorhandler(415)
    def error(e):
        return jsonify(error=getattr(e, "description", str(e))), getattr(e, "code", 400)

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            abort(400, "expected a JSON object")
        return data

    def field(data: dict[str, Any], key: str, typ: type = str) -> Any:
        v = data.get(key)
        if not isinstance(v, typ) or (typ is str and not v):
            abort(400, f"{key}: expected a {'non-empty ' if typ is str else ''}{typ.__name__}, found {v!r:.40}")
        return v

    def tab_of(value: Any) -> str:
        if not isinstance(value, str) or not 1 <= len(value) <= 64:
            abort(400, "tab: expected an id of 1-64 characters")
        return value

    @app.get("/")
    def index():
        return app.response_class(page, mimetype="text/html")

    @app.get("/api/state")
    def get_state():
        return run(state.state, tab_of(request.args.get("tab")))

    def run(fn, *args):
        try:
            return jsonify(fn(*args))
        except LookupError as e:
            abort(409, str(e).strip("'\""))
        except ValueError as e:
            abort(400, str(e))
        except ExtractorError as e:
            abort(409, str(e))

    @app.post("/api/answer")
    def post_answer():
        data = body()
        accept = data.get("accept", [])
        if not isinstance(accept, list) or not all(isinstance(a, str) for a in accept):
            abort(400, "accept: expected a list of option ids")
        return run(state.answer, tab_of(data.get("tab")), field(data, "id"), field(data, "answer"), accept)

    @app.post("/api/skip")
    def post_skip():
        data = body()
        return run(state.skip, tab_of(data.get("tab")), field(data, "id"))

    @app.post("/api/undo")
    def post_undo():
        data = body()
        return run(state.undo, tab_of(data.get("tab")))

    return app


def make_server(state: ReviewState, port: int = DEFAULT_PORT, proposals: str | Path | None = None):
    """A threaded WSGI server on 127.0.0.1:port (0 picks a free port); ``.port`` is the real one."""
    import socket

    app = create_app(state, port, proposals)  # first: it says so when Flask is missing
    from werkzeug.serving import make_server as _make

    # Bound here rather than by werkzeug, which exits the process when the port is taken.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(64)
    except OSError as e:
        sock.close()
        raise ExtractorError(f"--port {port}: expected a free port on {HOST}, found it {e.strerror or e}; "
                             "choose another with --port (0 picks a free one)") from None
    try:
        server = _make(HOST, port, app, threaded=True, fd=sock.fileno())
    finally:
        sock.close()  # the server holds its own duplicate of the socket
    app.config["QI_PORT"] = server.port

    def handle_error(request, client_address) -> None:
        # A browser closing its connection (or Ctrl+C while a request is open) is no news for
        # the reviewer; socketserver would print a traceback. Application errors are Flask's.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    server.handle_error = handle_error
    return server


def serve(path: str | Path, annotator: str, catalog: Catalog | None = None, *, port: int = DEFAULT_PORT,
          out=None, proposals: str | Path | None = None) -> None:
    """Serve the reviewer until Ctrl+C; every answer is already saved when it is shown as saved."""
    import signal
    import sys
    import threading

    if threading.current_thread() is threading.main_thread():
        # Ctrl+C must stop the server even when it was started from a shell that ignores SIGINT
        # in background jobs (Python then never installs its KeyboardInterrupt handler).
        signal.signal(signal.SIGINT, signal.default_int_handler)

    out = out or sys.stderr
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    state = ReviewState(path, annotator, catalog)
    server = make_server(state, port, proposals)
    view = state._view()
    print(f"reviewing {path} as {annotator}: {len(view.done)} of {view.total} answered; "
          f"open http://{HOST}:{server.port}/ (Ctrl+C stops; answers are saved as you go)"
          + (f"; proposals of {proposals} at http://{HOST}:{server.port}/proposals" if proposals else ""),
          file=out, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    view = state._view()
    print(f"stopped: {len(view.done)} of {view.total} tasks of {path} answered by {annotator}", file=out)

"""The web reviewer: ``extractor review serve QUEUE [--port N] [--model MODEL]``.

One task at a time in the browser (the question, the turns around it, the options numbered
as in the terminal reviewer with the likely ones first, definitions on ``d``, keyboard
shortcuts, undo, progress), served on the loopback address only. The logic lives in
:class:`extractor.review.web_state.ReviewState`; this module is its HTTP face.

Flask (a small, long-kept WSGI library with a test client) serves one self-contained page
(``extractor/data/review/``: HTML with its CSS and vanilla JS inlined, no external requests)
and a small JSON API. Requests must name the server itself (Host ``127.0.0.1:PORT`` or
``localhost:PORT``) to stop DNS rebinding; writes must come from the page itself (Origin
check, JSON body) to stop cross-site requests. Bodies are capped (:data:`MAX_BODY_BYTES`);
a malformed, oversized or deeply nested body is a JSON 400/413, never an HTML error page.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from extractor.catalog import Catalog
from extractor.errors import ExtractorError
from extractor.review.page import render
from extractor.review.teaching import Teacher
from extractor.review.web_state import ReviewState

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # never configurable: the queue holds interview text
DEFAULT_PORT = 8765
MAX_BODY_BYTES = 1 << 20  # an answer is a few hundred bytes


def render_page() -> tuple[str, str]:
    """The page (CSS and JS inlined) and its Content-Security-Policy (only those inline blocks run)."""
    return render("index.html", "review.css", "review.js", images=True)


def _flask():
    try:
        import flask
    except ImportError:  # pragma: no cover - depends on the install
        raise ExtractorError("the web reviewer needs Flask; install it with `pip install 'qi-extractor[review]'` "
                             "(or `pip install flask`), or use `extractor review annotate`") from None
    return flask


def _install_guards(app, flask) -> None:
    """Host, Origin and body checks before every request; safe headers after."""
    request, abort = flask.request, flask.abort
    page_csp = render_page()[1]

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
            resp.headers.setdefault("Content-Security-Policy", page_csp)  # a view may set its own
        return resp


def _install_errors(app, flask) -> None:
    """Every error, expected or not, is a one-line JSON ``{"error": ...}``."""
    from werkzeug.exceptions import HTTPException

    @app.errorhandler(HTTPException)
    def http_error(e):
        if e.code == 413:
            return flask.jsonify(error=f"request body over {MAX_BODY_BYTES} bytes refused"), 413
        return flask.jsonify(error=e.description or e.name), e.code

    @app.errorhandler(Exception)
    def internal_error(e):  # a bug, not the user's fault: logged, and still a JSON answer
        log.error("internal error in the web reviewer", exc_info=e)
        return flask.jsonify(error=f"internal error: {type(e).__name__}"), 500


def read_body(flask) -> dict[str, Any]:
    """The request's JSON object; anything else (or too deep, or too long) is a 400 / 413."""
    request, abort = flask.request, flask.abort
    raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: werkzeug answers 413
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        abort(400, "expected a JSON object")
    except RecursionError:
        abort(400, "expected a JSON object nested at most a few hundred levels deep")
    if not isinstance(data, dict):
        abort(400, "expected a JSON object")
    return data


def _field(flask, data: dict[str, Any], key: str) -> str:
    v = data.get(key)
    if not isinstance(v, str) or not v:
        flask.abort(400, f"{key}: expected a non-empty str, found {v!r:.40}")
    return str(v)


def _tab(flask, value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        flask.abort(400, "tab: expected an id of 1-64 characters")
    return value


def _install_routes(app, flask, state: ReviewState) -> None:
    page = render_page()[0]

    def run(fn, *args):
        try:
            return flask.jsonify(fn(*args))
        except LookupError as e:
            flask.abort(409, str(e).strip("'\""))
        except ValueError as e:
            flask.abort(400, str(e))
        except ExtractorError as e:
            flask.abort(409, str(e))

    @app.get("/")
    def index():
        return app.response_class(page, mimetype="text/html")

    @app.get("/api/state")
    def get_state():
        return run(state.state, _tab(flask, flask.request.args.get("tab")))

    @app.post("/api/answer")
    def post_answer():
        data = read_body(flask)
        accept = data.get("accept", [])
        if not isinstance(accept, list) or not all(isinstance(a, str) for a in accept):
            flask.abort(400, "accept: expected a list of option ids")
        return run(state.answer, _tab(flask, data.get("tab")), _field(flask, data, "id"),
                   _field(flask, data, "answer"), accept)

    @app.post("/api/skip")
    def post_skip():
        data = read_body(flask)
        return run(state.skip, _tab(flask, data.get("tab")), _field(flask, data, "id"))

    @app.post("/api/undo")
    def post_undo():
        return run(state.undo, _tab(flask, read_body(flask).get("tab")))


def create_app(state: ReviewState, port: int, proposals: str | Path | None = None):
    """The Flask app around ``state``; only requests to ``127.0.0.1:port`` / ``localhost:port`` pass.
    With ``proposals`` (a proposals JSONL) the proposals view is served at ``/proposals``."""
    flask = _flask()
    app = flask.Flask(__name__, static_folder=None)
    app.config["QI_PORT"] = port
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if proposals is not None:
        from extractor.review_proposals import register

        register(app, proposals, state.catalog, state.annotator)
    _install_guards(app, flask)
    _install_errors(app, flask)
    _install_routes(app, flask, state)
    return app


def make_server(state: ReviewState, port: int = DEFAULT_PORT, proposals: str | Path | None = None):
    """A threaded WSGI server on 127.0.0.1:port (0 picks a free port); ``.port`` is the real one."""
    import socket

    app = create_app(state, port, proposals)  # first: it says so when Flask is missing
    from werkzeug.serving import make_server as werkzeug_server

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
        server = werkzeug_server(HOST, port, app, threaded=True, fd=sock.fileno())
    finally:
        sock.close()  # the server holds its own duplicate of the socket
    app.config["QI_PORT"] = server.port

    def handle_error(request, client_address) -> None:
        # A browser closing its connection (or Ctrl+C while a request is open) is no news for
        # the reviewer; socketserver would print a traceback. Application errors are Flask's.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    server.handle_error = handle_error  # type: ignore[method-assign]
    return server


def serve(path: str | Path, annotator: str, catalog: Catalog, *, port: int = DEFAULT_PORT, out=None,
          teacher: Teacher | None = None, model: str | Path | None = None,
          proposals: str | Path | None = None) -> None:
    """Serve the reviewer until Ctrl+C; every answer is already saved when it is shown as saved.

    With ``teacher`` (or ``model``, a model folder a ``TeachSession`` is built from) each
    answer re-scores and re-orders the pending tasks.
    """
    import signal
    import sys
    import threading

    if threading.current_thread() is threading.main_thread():
        # Ctrl+C must stop the server even when it was started from a shell that ignores SIGINT
        # in background jobs (Python then never installs its KeyboardInterrupt handler).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    out = out or sys.stderr
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    if teacher is None and model is not None:
        teacher = _teacher_for(path, annotator, catalog, model)
    state = ReviewState(path, annotator, catalog, teacher=teacher)
    server = make_server(state, port, proposals)
    view = state.view()
    try:  # Ctrl+C right after the line below (a test sends it then) still stops cleanly
        print(f"reviewing {path} as {annotator}: {len(view.done)} of {view.total} answered"
              f"{'; answers re-score the rest' if teacher is not None else ''}; "
              f"open http://{HOST}:{server.port}/ (Ctrl+C stops; answers are saved as you go)"
              + (f"; proposals of {proposals} at http://{HOST}:{server.port}/proposals" if proposals else ""),
              file=out, flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    view = state.view()
    print(f"stopped: {len(view.done)} of {view.total} tasks of {path} answered by {annotator}", file=out)


def _teacher_for(path: str | Path, annotator: str, catalog: Catalog, model: str | Path) -> Teacher:
    from extractor.review.log import QueueLog
    from extractor.review.teaching import load_teacher
    from extractor.review.web_state import teacher_turns

    return load_teacher(model, teacher_turns(QueueLog(path, catalog, annotator).view))

"""Tests of the web reviewer: task hand-out, answers in the queue format, undo, concurrency,
the loopback-only server and its Host/Origin checks, and a real headless Chromium driving it."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from extractor import review
from extractor.catalog import load_catalog
from extractor.cli import main
from extractor.errors import ExtractorError, InputError
from extractor.review.tui import annotate
from extractor.review.web import create_app, make_server, render_page
from extractor.review.web_state import ReviewState
from extractor.types import Labels, Prediction, Turn, with_ids

flask = pytest.importorskip("flask", reason="the web reviewer needs Flask (pip install 'qi-extractor[review]')")

REPO = Path(__file__).resolve().parents[1]
CATALOG_YAML = """\
name: tiny
version: 1
phases:
- {id: collect, name: Collection, definition: Getting data.}
- {id: train, name: Training, definition: Fitting models.}
- {id: deploy, name: Deployment, definition: Shipping models.}
categories:
- {id: drift, name: Drift, definition: Data changes over time., phases: [deploy]}
- {id: noisy, name: Noisy labels, definition: Wrong labels., phases: [collect]}
- {id: cost, name: Cost, definition: Infrastructure is expensive.}
- {id: privacy, name: Privacy, definition: Personal data.}
- {id: slow, name: Slow pipelines, definition: Pipelines take long.}
"""
PORT = 8765  # what the test client's requests claim; the real servers below pick free ports


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_YAML)
    return load_catalog(path)


def make_queue(tmp_path: Path, catalog, n: int = 6, text=None) -> Path:
    rows = []
    for k in range(n):
        rows.append(Turn("I1", 2 * k, "interviewer", f"question {k}?"))
        rows.append(Turn("I1", 2 * k + 1, "interviewee", text(k) if text else f"answer {k} about data",
                         question=f"question {k}?"))
    turns = list(with_ids(rows))
    preds = []
    for k, t in enumerate(x for x in turns if x.is_interviewee):
        s = {"drift": 0.9, "noisy": 0.05 * k, "cost": 0.3, "privacy": 0.01, "slow": 0.2,
             "collect": 0.1, "train": 0.02, "deploy": 0.7, "mitigation": 0.6}
        preds.append(Prediction(t.interview, t.turn, t.id, categories=("drift",), phases=("deploy",), mitigation=True,
                                scores=s, text=t.text, question=t.question, model="m@1"))
    q = tmp_path / "queue.jsonl"
    review.export_queue(preds, q, catalog, turns=turns, order="file")
    return q


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def ticking_clock():
    n = iter(range(10**6))
    lock = threading.Lock()

    def clock() -> str:
        with lock:
            k = next(n)
        return f"2026-01-01T00:{k // 60 % 60:02d}:{k % 60:02d}.{k:06d}Z"
    return clock


@pytest.fixture
def client_for(catalog):
    def make(q: Path, annotator: str = "ann"):
        state = ReviewState(q, annotator, catalog, clock=ticking_clock())
        app = create_app(state, PORT)
        return state, app.test_client()
    return make


BASE = {"base_url": f"http://127.0.0.1:{PORT}"}
ORIGIN = {"Origin": f"http://127.0.0.1:{PORT}"}


def get_state(client, tab="t1"):
    r = client.get(f"/api/state?tab={tab}", **BASE)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def post(client, path, **body):
    return client.post(path, json=body, headers=ORIGIN, **BASE)


# --- task hand-out ---------------------------------------------------------------------------------


def test_state_shows_the_first_task_with_its_context_and_likely_options_first(tmp_path, catalog, client_for):
    q = make_queue(tmp_path, catalog)
    _, c = client_for(q)
    s = get_state(c)
    t = s["task"]
    assert s["progress"] == {"done": 0, "total": 6, "skipped": 0}
    assert (t["interview"], t["turn"], t["text"], t["question"]) == ("I1", 1, "answer 0 about data", "question 0?")
    assert t["previous"] is None  # it is the question itself, shown once
    assert t["next"] == {"speaker": "interviewer", "text": "question 1?", "turn": 2}
    likely = [o["id"] for o in t["options"] if o["likely"]]
    # The model's picks and top-scored categories and phases, then mitigation; the rest follow.
    assert likely == ["cat:drift", "cat:cost", "cat:slow", "phase:deploy", "phase:collect", "mitigation"]
    assert [o["id"] for o in t["options"]][:len(likely)] == likely
    assert {o["id"] for o in t["options"]} == set(review.option_ids(catalog))
    assert t["selection"] == ["cat:drift", "phase:deploy", "mitigation"]


def test_answer_writes_the_terminal_reviewers_format_and_moves_on(tmp_path, catalog, client_for):
    q = make_queue(tmp_path, catalog)
    q2 = tmp_path / "tui.jsonl"
    q2.write_bytes(q.read_bytes())
    _, c = client_for(q)
    t = get_state(c)["task"]
    r = post(c, "/api/answer", tab="t1", id=t["id"], answer="accept", accept=["cat:cost", "phase:deploy"])
    s = r.get_json()
    assert r.status_code == 200 and s["message"].startswith("saved: accept: Cost, Deployment | I1 turn 1")
    assert s["task"]["turn"] == 3 and s["progress"]["done"] == 1 and s["can_undo"]
    # The same answer given in the terminal reviewer writes the same line (but for the timestamp).
    annotate(q2, "ann", catalog, stdin=io.StringIO("1\nc cost\nm\na\n"), stdout=io.StringIO(),
             clock=lambda: "2026-01-01T00:00:00.000000Z")
    web, tui = lines(q)[-1], lines(q2)[-1]
    assert web["answer"] == "accept" and web["accept"] == ["cat:cost", "phase:deploy"] and web["annotator"] == "ann"
    assert {**web, "timestamp": None} == {**tui, "timestamp": None}
    assert q.read_bytes().startswith(q2.read_bytes()[:100]) and len(lines(q)) == 7  # appended
    assert review.validate_files([q], catalog) == []
    assert review.read_corrections([q], catalog)[t["id"]].categories == ("cost",)
    r = post(c, "/api/answer", tab="t1", id=s["task"]["id"], answer="reject", accept=["cat:drift"])
    assert r.get_json()["message"].startswith("saved: reject (no option applies)")
    assert lines(q)[-1]["answer"] == "reject" and lines(q)[-1]["accept"] == []


def test_undo_takes_the_answer_back_and_shows_that_task_again(tmp_path, catalog, client_for):
    q = make_queue(tmp_path, catalog)
    before = q.read_bytes()
    _, c = client_for(q)
    t = get_state(c)["task"]
    post(c, "/api/answer", tab="t1", id=t["id"], answer="accept", accept=["cat:noisy"])
    s = post(c, "/api/undo", tab="t1").get_json()
    assert s["message"] == "undone: the answer is taken back"
    assert s["task"]["id"] == t["id"] and s["task"]["selection"] == ["cat:noisy"]  # what was ticked comes back
    assert q.read_bytes() == before and s["progress"]["done"] == 0
    assert post(c, "/api/undo", tab="t1").get_json()["message"] == "nothing to undo in this tab"
    # Another tab cannot undo this tab's answers.
    post(c, "/api/answer", tab="t1", id=t["id"], answer="reject", accept=[])
    assert post(c, "/api/undo", tab="t2").get_json()["message"] == "nothing to undo in this tab"
    assert lines(q)[-1]["answer"] == "reject"


def test_skip_comes_back_after_the_others_and_can_be_undone(tmp_path, catalog, client_for):
    q = make_queue(tmp_path, catalog, n=2)
    _, c = client_for(q)
    first = get_state(c)["task"]["id"]
    s = post(c, "/api/skip", tab="t1", id=first).get_json()
    assert s["message"].startswith("skipped: I1 turn 1") and s["progress"]["skipped"] == 1
    second = s["task"]["id"]
    assert second != first
    s = post(c, "/api/undo", tab="t1").get_json()
    assert s["task"]["id"] == first and s["progress"]["skipped"] == 0
    s = post(c, "/api/skip", tab="t1", id=first).get_json()
    s = post(c, "/api/answer", tab="t1", id=second, answer="reject", accept=[]).get_json()
    assert s["task"]["id"] == first  # only the skipped one is left: it comes back
    s = post(c, "/api/answer", tab="t1", id=first, answer="reject", accept=[]).get_json()
    assert s["task"] is None and s["progress"] == {"done": 2, "total": 2, "skipped": 0}


def test_reload_resumes_on_the_same_task_and_a_restart_where_it_stopped(tmp_path, catalog, client_for):
    q = make_queue(tmp_path, catalog)
    _, c = client_for(q)
    for _ in range(3):
        t = get_state(c)["task"]
        post(c, "/api/answer", tab="t1", id=t["id"], answer="accept", accept=[])
    shown = get_state(c)["task"]["id"]
    assert get_state(c)["task"]["id"] == shown  # a reload shows the same task
    _, c2 = client_for(q)  # the server restarted
    s = get_state(c2, tab="new-tab")
    assert s["task"]["id"] == shown and s["progress"]["done"] == 3


def test_two_tabs_get_different_tasks_and_an_answer_elsewhere_moves_a_tab_on(tmp_path, catalog, client_for):
    q = make_queue(tmp_path, catalog)
    _, c = client_for(q)
    a, b = get_state(c, "A")["task"]["id"], get_state(c, "B")["task"]["id"]
    assert a != b
    post(c, "/api/answer", tab="B", id=a, answer="reject", accept=[])  # B answers A's task
    assert get_state(c, "A")["task"]["id"] not in (a,)
    # A terminal session answering the task A shows: A moves on at its next fetch.
    shown = get_state(c, "A")["task"]
    done_in_tui = _answer_in_tui(q, catalog, shown["id"])
    assert done_in_tui and get_state(c, "A")["task"]["id"] != shown["id"]


def _answer_in_tui(q: Path, catalog, task_id: str) -> bool:
    """Answer ``task_id`` in a terminal session (skipping the others)."""
    answered = {x["meta"]["id"] for x in lines(q) if x["annotator"] == "ann"}
    order = [x["meta"]["id"] for x in lines(q) if x["answer"] is None and x["meta"]["id"] not in answered]
    keys = "".join("a\n" if tid == task_id else "s\n" for tid in order)
    annotate(q, "ann", catalog, stdin=io.StringIO(keys), stdout=io.StringIO())
    return any(x["meta"]["id"] == task_id and x["answer"] == "accept" for x in lines(q))


def test_answering_twice_from_two_tabs_keeps_both_answers(tmp_path, catalog, client_for):
    q = make_queue(tmp_path, catalog)
    _, c = client_for(q)
    t = get_state(c, "A")["task"]["id"]
    post(c, "/api/answer", tab="A", id=t, answer="reject", accept=[])
    s = post(c, "/api/answer", tab="B", id=t, answer="accept", accept=["cat:cost"]).get_json()
    assert "answered again: the latest answer counts" in s["message"]
    assert [x["answer"] for x in lines(q) if x["meta"]["id"] == t] == [None, "reject", "accept"]
    assert review.read_corrections([q], catalog)[t].categories == ("cost",)


def test_concurrent_answers_from_two_tabs_and_a_terminal_lose_nothing(tmp_path, catalog, client_for):
    n = 30
    q = make_queue(tmp_path, catalog, n=n)
    _, c = client_for(q)
    errors: list[str] = []

    def tab(name: str) -> None:
        try:
            while True:
                task = get_state(c, name)["task"]
                if task is None:
                    return
                r = post(c, "/api/answer", tab=name, id=task["id"], answer="accept", accept=["cat:cost"])
                if r.status_code != 200:
                    errors.append(r.get_json()["error"])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    # A terminal reviewer (another annotator, another process) answers every task meanwhile.
    code = ("import sys; from extractor.review.tui import annotate; from extractor.catalog import load_catalog\n"
            "cat = load_catalog(sys.argv[2]); print('ready', flush=True); sys.stdin.readline()\n"
            "annotate(sys.argv[1], 'bob', cat, stdin=sys.stdin, stdout=open('/dev/null', 'w'))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(q), catalog.path], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, cwd=REPO, text=True)
    assert proc.stdout.readline().strip() == "ready"
    threads = [threading.Thread(target=tab, args=(name,)) for name in ("A", "B")]
    proc.stdin.write("go\n" + "a\n" * n)
    proc.stdin.flush()
    for t in threads:
        t.start()
    proc.stdin.close()
    proc.wait(timeout=60)
    for t in threads:
        t.join(timeout=60)
    assert not errors and proc.returncode == 0
    rows = lines(q)
    ann = [x["meta"]["id"] for x in rows if x["annotator"] == "ann"]
    bob = [x["meta"]["id"] for x in rows if x["annotator"] == "bob"]
    assert len(set(ann)) == n and len(set(bob)) == n  # every task answered by both, nothing lost
    assert len(rows) == n + len(ann) + len(bob)  # the tasks, and every answer appended once
    assert review.validate_files([q], catalog) == []


# --- requests the server refuses -------------------------------------------------------------------


def test_host_and_origin_checks_stop_dns_rebinding_and_cross_site_writes(tmp_path, catalog, client_for):
    q = make_queue(tmp_path, catalog)
    _, c = client_for(q)
    assert c.get("/api/state?tab=t", base_url=f"http://localhost:{PORT}").status_code == 200
    for host in ("evil.example:8765", "127.0.0.1:9999", "127.0.0.1", "0.0.0.0:8765"):
        r = c.get("/api/state?tab=t", headers={"Host": host}, **BASE)
        assert r.status_code == 403 and "is not this reviewer" in r.get_json()["error"], host
    assert c.get("/", headers={"Host": "evil.example"}).status_code == 403
    t = get_state(c)["task"]["id"]
    body = {"tab": "t", "id": t, "answer": "accept", "accept": []}
    for headers in ({}, {"Origin": "http://evil.example"}, {"Origin": "http://127.0.0.1:1"},
                    {**ORIGIN, "Sec-Fetch-Site": "cross-site"}):
        r = c.post("/api/answer", json=body, headers=headers, **BASE)
        assert r.status_code == 403, headers
    r = c.post("/api/answer", data=json.dumps(body), content_type="text/plain", headers=ORIGIN, **BASE)
    assert r.status_code == 415 and r.get_json()["error"] == "expected a JSON body"
    assert all(x["answer"] is None for x in lines(q))  # nothing was written


@pytest.mark.parametrize("body, status, message", [
    ({"id": "nope", "answer": "accept", "accept": []}, 409, "no task 'nope' in queue.jsonl"),
    ({"answer": "accept", "accept": []}, 400, "id: expected a non-empty str"),
    ({"id": "ID", "answer": "maybe", "accept": []}, 400, "answer: expected accept or reject"),
    ({"id": "ID", "answer": "accept", "accept": ["cat:unknown"]}, 400, "accept: expected options of task"),
    ({"id": "ID", "answer": "accept", "accept": "cat:drift"}, 400, "accept: expected a list of option ids"),
    ({"id": "ID", "answer": "accept", "accept": [], "tab": "x" * 65}, 400, "tab: expected an id of 1-64"),
])
def test_bad_answers_are_refused_with_a_reason(tmp_path, catalog, client_for, body, status, message):
    q = make_queue(tmp_path, catalog)
    _, c = client_for(q)
    tid = get_state(c)["task"]["id"]
    body = {"tab": "t1", **{k: (tid if v == "ID" else v) for k, v in body.items()}}
    r = c.post("/api/answer", json=body, headers=ORIGIN, **BASE)
    assert r.status_code == status and message in r.get_json()["error"]
    assert all(x["answer"] is None for x in lines(q))
    r = c.post("/api/answer", json=[1], headers=ORIGIN, **BASE)
    assert r.status_code == 400 and r.get_json()["error"] == "expected a JSON object"
    assert c.get("/api/state", **BASE).status_code == 400  # no tab id


def test_a_queue_broken_while_serving_is_reported_not_a_crash(tmp_path, catalog, client_for):
    q = make_queue(tmp_path, catalog)
    _, c = client_for(q)
    tid = get_state(c)["task"]["id"]
    q.write_text(q.read_text() + "not json\n")
    r = c.get("/api/state?tab=t1", **BASE)
    assert r.status_code == 409 and "queue.jsonl:7: expected one JSON object per line" in r.get_json()["error"]
    r = post(c, "/api/answer", tab="t1", id=tid, answer="reject", accept=[])
    assert r.status_code == 409 and "queue.jsonl:7" in r.get_json()["error"]
    assert q.read_text().endswith("not json\n")
    assert all(json.loads(x)["answer"] is None for x in q.read_text().splitlines()[:6])


def test_a_malformed_queue_is_refused_at_start(tmp_path, catalog):
    q = tmp_path / "q.jsonl"
    q.write_text('{"text": \n')
    with pytest.raises(InputError, match="q.jsonl:1: expected one JSON object per line"):
        ReviewState(q, "ann", catalog)
    with pytest.raises(ExtractorError, match="an annotator name is needed"):
        ReviewState(q, "", catalog)


def test_the_page_is_self_contained_and_its_script_never_parses_text_as_html(tmp_path, catalog, client_for):
    q = make_queue(tmp_path, catalog)
    _, c = client_for(q)
    r = c.get("/", **BASE)
    page, csp = render_page()
    assert r.status_code == 200 and r.get_data(as_text=True) == page
    assert r.headers["Content-Security-Policy"] == csp and "script-src 'sha256-" in csp
    assert "default-src 'none'" in csp and r.headers["X-Frame-Options"] == "DENY"
    for external in ("http://", "https://", "//cdn", "@import", "src=\"http"):
        assert external not in page
    for name in ("common.js", "review.js"):
        js = (REPO / "extractor" / "data" / "review" / name).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in js


# --- the real server: loopback only ----------------------------------------------------------------


def _listening_addresses(port: int) -> list[str]:
    """Local addresses of the LISTEN sockets on ``port`` (Linux /proc/net/tcp{,6})."""
    out = []
    for name in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{name}")
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                out.append(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]) if len(addr) == 8 else addr)
    return out


def _other_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def test_serve_listens_on_the_loopback_address_only(tmp_path, catalog):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc/net/tcp to list listening sockets")
    q = make_queue(tmp_path, catalog)
    proc = subprocess.Popen([sys.executable, "-m", "extractor", "review", "serve", str(q), "--port", "0",
                             "--annotator", "ann", "--catalog", catalog.path], cwd=REPO, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stderr.readline()
        assert "open http://127.0.0.1:" in line, line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        assert _listening_addresses(port) == ["127.0.0.1"]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        other = _other_address()
        if other:
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=2)
        proc.send_signal(signal.SIGINT)  # Ctrl+C: a clean stop with a summary
        assert proc.communicate(timeout=10)[1] == f"stopped: 0 of 6 tasks of {q} answered by ann\n"
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    out = io.StringIO()
    assert "--host" not in _help(["review", "serve", "--help"], out)


def _help(argv, out) -> str:
    from contextlib import redirect_stdout

    with redirect_stdout(out), pytest.raises(SystemExit):
        main(argv)
    return out.getvalue()


def test_without_flask_serve_says_how_to_install_it(tmp_path, catalog, monkeypatch):
    q = make_queue(tmp_path, catalog)
    monkeypatch.setitem(sys.modules, "flask", None)  # import flask raises ImportError
    with pytest.raises(ExtractorError, match=r"the web reviewer needs Flask; install it with `pip install "
                                             r"'qi-extractor\[review\]'`"):
        make_server(ReviewState(q, "ann", catalog), 0)


def test_the_server_socket_is_bound_to_the_loopback_address(tmp_path, catalog):
    server = make_server(ReviewState(make_queue(tmp_path, catalog), "ann", catalog), 0)
    try:
        assert server.socket.getsockname()[0] == "127.0.0.1" and server.port == server.socket.getsockname()[1]
    finally:
        server.server_close()


def test_busy_port_and_bad_port_are_one_line_errors(tmp_path, catalog, capsys):
    q = make_queue(tmp_path, catalog)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ExtractorError, match=f"--port {port}: expected a free port on 127.0.0.1, found it"):
            make_server(ReviewState(q, "ann", catalog), port)
    assert main(["review", "serve", str(q), "--port", "70000", "--catalog", catalog.path]) != 0
    assert "--port: expected a port number 0-65535, found 70000" in capsys.readouterr().err


# --- headless Chromium drives the page --------------------------------------------------------------


@pytest.fixture
def live(tmp_path, catalog):
    """A real server on a free loopback port, in a thread."""
    servers = []

    def start(q: Path, annotator: str = "ann"):
        state = ReviewState(q, annotator, catalog)
        server = make_server(state, 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}/"
    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _wait(driver, cond, timeout=10, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = cond(driver)
            if v:
                return v
        except Exception:  # noqa: BLE001 - the page is being re-rendered
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; status: "
                         f"{driver.find_element('id', 'status').text!r}")


def _text(driver, css: str) -> str:
    return driver.find_element("css selector", css).text


def _press(driver, keys: str) -> None:
    driver.switch_to.active_element.send_keys(keys)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chromium_shows_the_first_task_of_review_serve(tmp_path, catalog, browser):
    q = make_queue(tmp_path, catalog)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "extractor", "review", "serve", str(q), "--port", str(port),
                             "--annotator", "ann", "--catalog", catalog.path], cwd=REPO, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert f"open http://127.0.0.1:{port}/" in proc.stderr.readline()
        assert _listening_addresses(port) in ([], ["127.0.0.1"])  # [] where /proc/net/tcp is absent
        browser.get(f"http://127.0.0.1:{port}/")
        _wait(browser, lambda d: _text(d, "#current .text") == "answer 0 about data", what="the first task's turn")
        assert _text(browser, "#question .text") == "question 0?" and "task 1 of 6" in _text(browser, "#progress-text")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_chromium_answers_three_tasks_by_keyboard_and_resumes_after_reload(tmp_path, catalog, live, browser):
    q = make_queue(tmp_path, catalog, text=lambda k: f"answer {k} <b>not bold</b> <script>window.pwned=1</script>")
    url = live(q)
    browser.get(url)
    _wait(browser, lambda d: "answer 0" in _text(d, "#current .text"), what="the first task's turn")
    assert _text(browser, "#current .text") == "answer 0 <b>not bold</b> <script>window.pwned=1</script>"
    assert not browser.find_elements("css selector", "#current b")  # shown as text, never parsed
    assert browser.execute_script("return window.pwned === undefined")
    assert _text(browser, "#question .text") == "question 0?"
    assert "task 1 of 6" in _text(browser, "#progress-text")
    likely = browser.find_elements("css selector", "#likely li.option")
    assert [x.find_element("css selector", ".name .label").text for x in likely][:3] == ["Drift", "Cost", "Slow pipelines"]
    assert browser.find_element("id", "all").get_attribute("hidden") is not None  # the rest on demand
    _press(browser, "2")  # tick Cost
    _press(browser, "/")  # filter the other options, Enter ticks the first match
    _press(browser, "priv\n")
    _press(browser, "\ue00c")  # Escape: back to the shortcuts
    _press(browser, "a")
    _wait(browser, lambda d: "1 of 6 answered" in _text(d, "#progress-text"), what="the first answer")
    assert _text(browser, "#status").startswith("saved: accept: Drift, Cost, Privacy, Deployment, Mitigation")
    _press(browser, "x")
    _wait(browser, lambda d: "2 of 6 answered" in _text(d, "#progress-text"), what="the reject")
    _press(browser, "s")
    _wait(browser, lambda d: "skipped" in _text(d, "#status"), what="the skip")
    _press(browser, "u")  # undo the skip: task 3 again
    _wait(browser, lambda d: "undone" in _text(d, "#status"), what="the undo")
    assert "answer 2" in _text(browser, "#current .text")
    _press(browser, "a")
    _wait(browser, lambda d: "3 of 6 answered" in _text(d, "#progress-text"), what="the third answer")
    shown = _text(browser, "#current .text")
    assert shown.startswith("answer 3")
    browser.refresh()
    _wait(browser, lambda d: _text(d, "#current .text") == shown, what="the same task after reload")
    assert "task 4 of 6" in _text(browser, "#progress-text")
    answers = [r for r in lines(q) if r["answer"]]
    assert [(r["meta"]["turn"], r["answer"]) for r in answers] == [(1, "accept"), (3, "reject"), (5, "accept")]
    assert answers[0]["accept"] == ["cat:drift", "cat:cost", "cat:privacy", "phase:deploy", "mitigation"]
    assert review.validate_files([q], catalog) == []


def test_chromium_two_tabs_answering_at_once_lose_nothing(tmp_path, catalog, live, browser):
    n = 8
    q = make_queue(tmp_path, catalog, n=n)
    url = live(q)
    browser.get(url)
    _wait(browser, lambda d: _text(d, "#current .text").startswith("answer"), what="tab 1")
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(url)
    _wait(browser, lambda d: _text(d, "#current .text").startswith("answer"), what="tab 2")
    second = browser.current_window_handle
    shown2 = _text(browser, "#current .text")
    browser.switch_to.window(first)
    assert _text(browser, "#current .text") != shown2  # each tab got its own task
    # Each round both tabs answer at once: the second key press goes out before the first returns.
    for k in range(n // 2):
        browser.switch_to.window(first)
        _press(browser, "a")
        browser.switch_to.window(second)
        _press(browser, "a")
        _wait(browser, lambda d, k=k: sum(1 for r in lines(q) if r["answer"]) == 2 * (k + 1), what=f"round {k + 1}")
    rows = lines(q)
    assert len(rows) == 2 * n  # the tasks, then each answer appended once
    assert {r["meta"]["id"] for r in rows if r["answer"] == "accept"} == {r["meta"]["id"] for r in rows}
    browser.refresh()
    _wait(browser, lambda d: d.find_element("id", "done").is_displayed(), what="the done page")


def test_ctrl_c_stops_the_server_even_when_sigint_was_ignored_by_the_parent(tmp_path, catalog):
    """Shells ignore SIGINT in background jobs and the child inherits that: Python then has no
    KeyboardInterrupt handler unless the server installs one."""
    q = make_queue(tmp_path, catalog)
    proc = subprocess.Popen([sys.executable, "-m", "extractor", "review", "serve", str(q), "--port", "0",
                             "--annotator", "ann", "--catalog", catalog.path], cwd=REPO, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert "open http://127.0.0.1:" in proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        assert proc.communicate(timeout=10)[1].startswith("stopped: 0 of 6 tasks")
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


# --- one keyboard: the same numbers in both reviewers, definitions one key away (issue 18, item 5) -----


def test_options_are_numbered_as_in_the_terminal_and_carry_their_definitions(tmp_path, catalog, client_for):
    from extractor.review.session import numbered_options

    q = make_queue(tmp_path, catalog)
    _, c = client_for(q)
    opts = get_state(c)["task"]["options"]
    task = lines(q)[0]
    assert [o["number"] for o in opts] == list(range(1, len(opts) + 1))
    assert [o["id"] for o in opts] == [o["id"] for o in numbered_options(task)]
    assert opts[1]["id"] == "cat:cost" and opts[1]["definition"] == "Infrastructure is expensive."
    assert next(o for o in opts if o["id"] == "mitigation")["definition"].startswith("The turn describes how")


def test_chromium_key_3_ticks_what_the_terminal_3_ticks_and_d_shows_definitions(tmp_path, catalog, live, browser):
    q = make_queue(tmp_path, catalog)
    q2 = tmp_path / "tui.jsonl"
    q2.write_bytes(q.read_bytes())
    browser.get(live(q))
    _wait(browser, lambda d: "answer 0" in _text(d, "#current .text"), what="the first task")
    assert not browser.find_elements("css selector", "#likely .definition")
    _press(browser, "d")
    shown = _wait(browser, lambda d: [x.text for x in d.find_elements("css selector", "#likely .definition")],
                  what="the definitions")
    assert shown[:3] == ["Data changes over time.", "Infrastructure is expensive.", "Pipelines take long."]
    third = browser.find_element("css selector", '#likely li.option[data-number="3"]')
    assert third.find_element("css selector", ".name .label").text == "Slow pipelines"
    _press(browser, "3")
    _wait(browser, lambda d: "ticked" in d.find_element("css selector", '#likely li[data-number="3"]')
          .get_attribute("class"), what="option 3 ticked")
    _press(browser, "a")
    _wait(browser, lambda d: "1 of 6 answered" in _text(d, "#progress-text"), what="the answer")
    annotate(q2, "ann", catalog, stdin=io.StringIO("3\na\n"), stdout=io.StringIO())
    web, tui = lines(q)[-1], lines(q2)[-1]
    assert web["accept"] == tui["accept"] == ["cat:drift", "cat:slow", "phase:deploy", "mitigation"]


# --- answers teach at once: re-scoring and re-ordering the pending tasks (issue 18, item 1) ------------


class FakeTeacher:
    """The TeachSession contract (``teach(turn_id, labels)``, ``predictions()``), deterministic and fast:
    a taught category raises that category's score on every other turn by 0.45."""

    def __init__(self, turns, catalog):
        self.all_turns = list(turns)
        self.turns = [t for t in self.all_turns if t.speaker == "interviewee"]  # what TeachSession predicts
        self.catalog = catalog
        self.taught: list[tuple[str, object]] = []
        self.base = {t.id: {c: 0.05 + 0.01 * (k % 7) for c in catalog.category_ids} for k, t in enumerate(self.turns)}
        for k, t in enumerate(self.turns):
            self.base[t.id]["drift"] = 0.9 - 0.1 * (k % 5)
            self.base[t.id] |= {p: 0.1 for p in catalog.phase_ids} | {"mitigation": 0.1}

    def teach(self, turn_id, labels) -> None:
        self.taught.append((turn_id, labels))

    def forget(self, turn_id) -> None:
        self.taught = [(t, lab) for t, lab in self.taught if t != turn_id]

    def predictions(self):
        boost = {c for _, lab in self.taught for c in lab.categories}
        out = []
        for t in self.turns:
            s = {k: min(1.0, v + (0.45 if k in boost else 0.0)) for k, v in self.base[t.id].items()}
            out.append(Prediction(t.interview, t.turn, t.id, categories=tuple(c for c in self.catalog.category_ids
                                                                             if s[c] >= 0.5),
                                  phases=(), mitigation=False, scores=s, text=t.text, model="taught"))
        return out


def _teacher_for(q: Path, catalog) -> FakeTeacher:
    from extractor.review.log import QueueLog
    from extractor.review.web_state import teacher_turns

    return FakeTeacher(teacher_turns(QueueLog(q, catalog, "ann").view), catalog)


def test_each_answer_teaches_and_rescores_and_reorders_the_pending_tasks(tmp_path, catalog):
    q = make_queue(tmp_path, catalog)
    teacher = _teacher_for(q, catalog)
    # The session reads the interviews in order, questions included (neighbours are features);
    # the task turns keep the queue's ids.
    assert [(t.turn, t.speaker) for t in teacher.all_turns][:3] == [(0, "interviewer"), (1, "interviewee"),
                                                                    (2, "interviewer")]
    assert [t.text for t in teacher.turns][:2] == ["answer 0 about data", "answer 1 about data"]
    assert teacher.turns[0].question == "question 0?" and [t.id for t in teacher.turns] == \
        [x["meta"]["id"] for x in lines(q)]
    state = ReviewState(q, "ann", catalog, clock=ticking_clock(), teacher=teacher)
    app = create_app(state, PORT).test_client()
    s = get_state(app)
    assert s["teaching"] and teacher.taught == []
    first = s["task"]
    # The teacher's scores, not the queue's: drift 0.9 - 0.1 * k; cost 0.05 .. 0.11, below 0.5.
    cost = next(o for o in first["options"] if o["id"] == "cat:cost")
    assert cost["score"] == pytest.approx(teacher.base[first["id"]]["cost"]) and "cat:cost" not in first["selection"]
    before = q.read_bytes()
    s = post(app, "/api/answer", tab="t1", id=first["id"], answer="accept", accept=["cat:cost"]).get_json()
    assert teacher.taught == [(first["id"], Labels(("cost",)))]
    # Every pending task now has cost near 0.5 -> its least certain decision: re-scored and pre-ticked.
    nxt = s["task"]
    cost = next(o for o in nxt["options"] if o["id"] == "cat:cost")
    assert cost["score"] == pytest.approx(teacher.base[nxt["id"]]["cost"] + 0.45) and "cat:cost" in nxt["selection"]
    # The order follows the new scores, in `review export`'s default order (coverage).
    pending = set(state.view().pending())
    fresh = [p for p in teacher.predictions() if p.id in pending]
    assert next(state.pending(state.view())) == nxt["id"] == fresh[review.rank(fresh, catalog)[0]].id
    assert state.rescorer.order == review.DEFAULT_ORDER == "coverage"
    assert q.read_bytes().startswith(before) and len(lines(q)) == 7  # answered lines are never rewritten
    assert lines(q)[-1]["accept"] == ["cat:cost"]
    # Undo: the teacher forgets the answer, the pending tasks are re-scored without it.
    s = post(app, "/api/undo", tab="t1").get_json()
    assert teacher.taught == [] and s["task"]["id"] == first["id"]
    cost = next(o for o in s["task"]["options"] if o["id"] == "cat:cost")
    assert cost["score"] == pytest.approx(teacher.base[first["id"]]["cost"])


def test_answers_already_in_the_queue_are_taught_at_start(tmp_path, catalog, client_for):
    q = make_queue(tmp_path, catalog)
    _, c = client_for(q, "bob")
    t = get_state(c)["task"]["id"]
    post(c, "/api/answer", tab="t1", id=t, answer="reject", accept=[])
    teacher = _teacher_for(q, catalog)
    ReviewState(q, "ann", catalog, teacher=teacher)
    assert teacher.taught == [(t, Labels())]


def test_rescoring_a_1000_task_queue_answers_within_a_second(tmp_path, catalog):
    import time

    q = make_queue(tmp_path, catalog, n=1000)
    teacher = _teacher_for(q, catalog)
    state = ReviewState(q, "ann", catalog, clock=ticking_clock(), teacher=teacher)
    task = state.state("t1")["task"]
    took = []
    for _ in range(3):
        start = time.perf_counter()
        task = state.answer("t1", task["id"], "accept", ["cat:cost"])["task"]
        took.append(time.perf_counter() - start)
    assert len(teacher.taught) == 3 and max(took) < 1.0, took


def test_serve_model_that_is_not_a_model_folder_is_a_one_line_error(tmp_path):
    from extractor.review.teaching import load_teacher

    with pytest.raises(ExtractorError, match="default"):  # the hint names the packaged model
        load_teacher(tmp_path / "no-such-model", [])


# --- hostile requests (issue 20): capped bodies, malformed and deeply nested JSON -----------------------


@pytest.mark.parametrize("data, status, message", [
    (b"{not json", 400, "expected a JSON object"),
    (b"[" * 100000 + b"]" * 100000, 400, "nested at most a few hundred levels deep"),
    (b'{"tab": ' + b"[" * 100000 + b"]" * 100000 + b"}", 400, "nested at most a few hundred levels deep"),
    (b'{"tab": "t1", "id": "\xff\xfe"}', 400, "expected a JSON object"),
    (b'{"tab": "t1", "pad": "' + b"x" * (1 << 21) + b'"}', 413, "request body over 1048576 bytes refused"),
])
def test_malformed_deep_and_oversized_bodies_are_json_errors(tmp_path, catalog, client_for, data, status, message):
    q = make_queue(tmp_path, catalog)
    _, c = client_for(q)
    for path in ("/api/answer", "/api/skip", "/api/undo"):
        r = c.post(path, data=data, content_type="application/json", headers=ORIGIN, **BASE)
        assert r.status_code == status and r.is_json and message in r.get_json()["error"], (path, r.data[:200])
    assert all(x["answer"] is None for x in lines(q))


def test_an_internal_error_is_a_json_500_not_an_html_page(tmp_path, catalog, client_for, monkeypatch):
    q = make_queue(tmp_path, catalog)
    state, c = client_for(q)
    monkeypatch.setattr(state, "skip", lambda *a: 1 / 0)
    r = post(c, "/api/skip", tab="t1", id="x")
    assert r.status_code == 500 and r.get_json() == {"error": "internal error: ZeroDivisionError"}
    assert b"<html" not in r.data.lower()


def test_the_real_server_refuses_a_huge_body_without_reading_it(tmp_path, catalog, live):
    q = make_queue(tmp_path, catalog)
    url = live(q)
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall((f"POST /api/answer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
                   "Content-Type: application/json\r\nContent-Length: 400000000\r\n\r\n{\"tab\": ").encode())
        reply = b""  # 400 MB announced, a few bytes sent: answered at once, and closed
        while chunk := s.recv(4096):
            reply += chunk
        reply = reply.decode("latin-1")
    assert reply.startswith("HTTP/1.1 413") and "request body over 1048576 bytes refused" in reply

"""Tests of the web reviewer's proposals view: decisions and edits saved into the proposals
file under its lock, merge/sub-type targets checked, the page's API, and headless Chromium
reviewing proposals by keyboard and finding the decisions after a reload."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from extractor import proposals as P
from extractor.catalog import load_catalog, save_catalog
from extractor.review.web import ReviewState, create_app, make_server
from extractor.review_proposals import ProposalsState

flask = pytest.importorskip("flask", reason="the web reviewer needs Flask (pip install 'qi-extractor[review]')")

PORT = 8765
BASE = {"base_url": f"http://127.0.0.1:{PORT}"}
ORIGIN = {"Origin": f"http://127.0.0.1:{PORT}"}


def proposal(k: int, name: str) -> dict:
    members = [f"I{k}-t{j}" for j in range(4)]
    quotes = [P.Quote(interview=f"Interview {j + 1}", turn=j, id=m, text=f"quote {j} about {name} <b>x</b>")
              for j, m in enumerate(members[:3])]
    return P.Proposal(id=P.proposal_id(members), name=name, keywords=(name.split()[0], "queue"), quotes=tuple(quotes),
                      size=4, n_interviews=2, interviews=("Interview 1", "Interview 2"), members=tuple(members),
                      nearest=({"id": "drift", "name": "Drift", "similarity": 0.3},),
                      definition=f"Practitioners report problems with {name}.",
                      why_not="Not Drift: its description never mentions queue.").to_dict()


@pytest.fixture
def files(tmp_path):
    path = tmp_path / "proposals.jsonl"
    path.write_text("".join(json.dumps(proposal(k, n)) + "\n" for k, n in
                            enumerate(["gpu quota", "licence review", "wiki pages", "gpu queue"])))
    queue = tmp_path / "queue.jsonl"
    queue.write_text("")
    return path, queue


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_decisions_and_edits_are_saved_in_the_file(files):
    path, _ = files
    s = ProposalsState(path, load_catalog(), "ann", clock=lambda: "2026-01-01T00:00:00Z")
    ids = [p["id"] for p in s.state()["proposals"]]
    s.edit(ids[0], name="  Shared GPU   quota ", definition="Training waits for shared GPUs.")
    s.decide(ids[0], "accept")
    s.decide(ids[3], "merge", ids[0])
    s.decide(ids[2], "subtype", "artefact-management")
    out = s.decide(ids[1], "reject")
    r = rows(path)
    assert (r[0]["name"], r[0]["definition"], r[0]["decision"]) == ("Shared GPU quota", "Training waits for shared "
                                                                   "GPUs.", "accept")
    assert (r[0]["decided_by"], r[0]["decided_at"]) == ("ann", "2026-01-01T00:00:00Z")
    assert (r[3]["decision"], r[3]["merge_into"]) == ("merge", ids[0])
    assert (r[2]["decision"], r[2]["subtype_of"]) == ("subtype", "artefact-management")
    assert out["progress"] == {"decided": 4, "total": 4} and out["message"] == "saved: licence review: reject"
    s.decide(ids[1], "")  # taken back
    assert rows(path)[1]["decision"] is None and rows(path)[1]["decided_by"] == ""


def test_bad_targets_and_values_are_refused(files):
    path, _ = files
    s = ProposalsState(path, load_catalog(), "ann")
    ids = [p["id"] for p in s.state()["proposals"]]
    with pytest.raises(ValueError, match="target: expected the id of another proposal, found 'p-nope'"):
        s.decide(ids[0], "merge", "p-nope")
    with pytest.raises(ValueError, match="target: expected the id of another proposal"):
        s.decide(ids[0], "merge", ids[0])
    s.decide(ids[1], "merge", ids[0])
    with pytest.raises(ValueError, match="target: expected a proposal not itself merged"):
        s.decide(ids[2], "merge", ids[1])
    with pytest.raises(ValueError, match="target: expected a catalog entry id, found 'nope'"):
        s.decide(ids[0], "subtype", "nope")
    with pytest.raises(ValueError, match="decision: expected one of accept, reject, merge, subtype"):
        s.decide(ids[0], "maybe")
    with pytest.raises(ValueError, match="name: expected 1-120 characters"):
        s.edit(ids[0], name="  ")
    with pytest.raises(ValueError, match="expected a name or a definition to save, found neither"):
        s.edit(ids[0])
    with pytest.raises(LookupError, match="expected a proposal 'p-nope', found none"):
        s.decide("p-nope", "accept")


def test_applying_merge_and_subtype(files, tmp_path):
    path, _ = files
    cat_path = tmp_path / "catalog.yaml"
    save_catalog(load_catalog(), cat_path)
    s = ProposalsState(path, load_catalog(), "ann")
    ids = [p["id"] for p in s.state()["proposals"]]
    s.decide(ids[0], "accept")
    s.decide(ids[3], "merge", ids[0])
    s.decide(ids[2], "subtype", "drift")
    done = P.apply_decisions(path, cat_path, tmp_path / "rejected.jsonl")
    assert done["accepted"] == ["gpu-quota"] and done["merged"] == [ids[3]] and done["subtype"] == [ids[2]]
    mem = P.load_rejected(tmp_path / "rejected.jsonl")
    assert [(m["id"], m["reason"]) for m in mem] == [(ids[2], "sub-type of drift")]
    merged = P.merged_members(P.read_proposals(path))
    assert set(merged[ids[0]]) == set(rows(path)[0]["members"]) | set(rows(path)[3]["members"])


def test_api_and_page_headers(files):
    path, queue = files
    catalog = load_catalog()
    app = create_app(ReviewState(queue, "ann", catalog), PORT, proposals=path)
    c = app.test_client()
    page = c.get("/proposals", **BASE)
    assert page.status_code == 200 and b"Possible new codes" in page.data
    assert "sha256-" in page.headers["Content-Security-Policy"]
    assert page.headers["Content-Security-Policy"] != c.get("/", **BASE).headers["Content-Security-Policy"]
    ids = [p["id"] for p in c.get("/api/proposals", **BASE).get_json()["proposals"]]
    r = c.post("/api/proposals/decide", json={"id": ids[0], "decision": "accept"}, headers=ORIGIN, **BASE)
    assert r.status_code == 200 and rows(path)[0]["decision"] == "accept"
    r = c.post("/api/proposals/decide", json={"id": ids[0], "decision": "merge", "target": "x"}, headers=ORIGIN, **BASE)
    assert r.status_code == 400 and "target: expected the id of another proposal" in r.get_json()["error"]
    assert c.post("/api/proposals/decide", json={"decision": "accept"}, headers=ORIGIN, **BASE).status_code == 400
    r = c.post("/api/proposals/decide", json={"id": ids[1], "decision": 5}, headers=ORIGIN, **BASE)
    assert r.status_code == 400 and r.get_json()["error"].startswith("decision: expected one of accept")
    # the reviewer's guard covers the view: no cross-origin writes
    r = c.post("/api/proposals/decide", json={"id": ids[1], "decision": "reject"},
               headers={"Origin": "http://evil.example"}, **BASE)
    assert r.status_code == 403 and rows(path)[1]["decision"] is None


# --- headless Chromium ----------------------------------------------------------------------


def wait(driver, cond, what: str, timeout: float = 10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if cond(driver):
                return
        except Exception:  # noqa: BLE001 - the page is being re-rendered
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; status: {driver.find_element('id', 'status').text!r}")


def text(driver, css: str) -> str:
    return driver.find_element("css selector", css).text


def press(driver, keys: str) -> None:
    driver.switch_to.active_element.send_keys(keys)


def test_chromium_reviews_proposals_by_keyboard_and_finds_them_after_reload(files, browser):
    path, queue = files
    server = make_server(ReviewState(queue, "ann", load_catalog()), 0, proposals=path)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{server.port}/proposals")
        wait(browser, lambda d: text(d, "#name") == "#1 gpu quota", "the first proposal")
        assert not browser.find_elements("css selector", "#quotes b")  # quotes shown as text
        press(browser, "n")  # rename, then accept
        press(browser, "\ue009a")  # Ctrl+A selects the old name
        press(browser, "Shared GPU quota\n")
        wait(browser, lambda d: text(d, "#name") == "#1 Shared GPU quota", "the new name")
        press(browser, "a")
        wait(browser, lambda d: "1 of 4 decided" in text(d, "#progress-text"), "the accept")
        press(browser, "j")
        press(browser, "x")  # reject #2
        wait(browser, lambda d: "2 of 4 decided" in text(d, "#progress-text"), "the reject")
        press(browser, "jj")
        press(browser, "m")  # merge #4 into #1
        press(browser, "1\n")
        wait(browser, lambda d: "3 of 4 decided" in text(d, "#progress-text"), "the merge")
        assert text(browser, "#decision") == "Decision: merged into #1"
        browser.refresh()
        wait(browser, lambda d: "3 of 4 decided" in text(d, "#progress-text"), "the decisions after reload")
        items = [li.text for li in browser.find_elements("css selector", "#list li")]
        assert items == ["Shared GPU quota accepted", "licence review rejected", "wiki pages undecided",
                         "gpu queue merged into #1"]
    finally:
        server.shutdown()
        server.server_close()
    r = rows(path)
    assert [(x["name"], x["decision"]) for x in r] == [("Shared GPU quota", "accept"), ("licence review", "reject"),
                                                       ("wiki pages", None), ("gpu queue", "merge")]
    assert r[3]["merge_into"] == r[0]["id"]

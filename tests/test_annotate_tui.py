"""Tests of the terminal reviewer's screen: a task fits 40 x 100, likely options first, answers
are confirmed, typos get the nearest command or id; and a real 40 x 100 tmux pane."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from extractor import review
from extractor.catalog import load_catalog
from extractor.review.tui import FOOTER, SHORT_FOOTER, Reviewer, annotate
from extractor.types import Prediction, Turn, with_ids

REPO = Path(__file__).resolve().parents[1]
LONG = ("We had a dashboard but nobody looked at it, and the sensor data changed after the firmware update, "
        "so the labels the students made no longer matched what the machines did. ")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()  # the real one: 28 categories, 7 phases, mitigation


def make_queue(tmp_path: Path, catalog, *, turn_repeat=(1, 8, 30), question_repeat=3) -> Path:
    rows = []
    for k, rep in enumerate(turn_repeat):
        rows.append(Turn("P07", 2 * k, "interviewer", f"Question {k}: " + "how did you notice it? " * 8 * question_repeat))
        rows.append(Turn("P07", 2 * k + 1, "interviewee", f"Answer {k}: " + LONG * rep,
                         question=f"Question {k}: " + "how did you notice it? " * 8 * question_repeat))
    turns = list(with_ids(rows))
    preds = []
    for t in (x for x in turns if x.is_interviewee):
        s = {c: 0.01 * (j % 7) for j, c in enumerate(catalog.category_ids)}
        s |= {"drift": 0.81, "noisy-labels": 0.62, "infrastructure-cost": 0.4}
        s |= {p: 0.05 for p in catalog.phase_ids} | {"model_maintenance": 0.7, "data_collection": 0.3}
        s["mitigation"] = 0.2
        preds.append(Prediction(t.interview, t.turn, t.id, categories=("drift", "noisy-labels"),
                                phases=("model_maintenance",), mitigation=False, scores=s, text=t.text, question=t.question,
                                model="qi-classifier:all-MiniLM-L6-v2:qi-catalog@2:5a7e7628"))
    q = tmp_path / "queue.jsonl"
    review.export_queue(preds, q, catalog, turns=turns, order="file")
    return q


def run(q: Path, catalog, keys: str, annotator: str = "ann") -> str:
    out = io.StringIO()
    annotate(q, annotator, catalog, stdin=io.StringIO(keys), stdout=out)
    return out.getvalue()


def screens(output: str) -> list[list[str]]:
    """What a 40-line terminal shows each time the reviewer waits for a command."""
    lines = output.split("\n")
    out, upto = [], []
    for line in lines:
        upto.append(line)
        if line.startswith("> "):
            out.append(upto[-40:])
    return out


def test_every_task_fits_40_by_100_with_the_turn_and_prompt_on_screen(tmp_path, catalog):
    q = make_queue(tmp_path, catalog)
    for mode in ("", "o\n"):
        reviewer = Reviewer(q, "ann", catalog, out=io.StringIO())
        reviewer.all_options = bool(mode)
        for i in range(len(reviewer.todo)):
            reviewer.i = i
            reviewer.start()
            block = reviewer.block()
            assert len(block) <= 38, (mode, i, len(block))  # + a message line and the prompt
            assert all(len(line) < 100 for line in block), max(block, key=len)
            assert "  TURN (interviewee):" in block and block[-1] == FOOTER
            turn_at = block.index("  TURN (interviewee):")
            assert block[turn_at + 1].startswith(f"  > Answer {i}: We had a dashboard")
    # A smaller terminal: nothing wraps (a long header is cut), a shorter footer.
    small = Reviewer(q, "ann", catalog, out=io.StringIO(), width=80, height=30)
    small.start()
    block = small.block()
    assert len(block) <= 28 and all(len(line) < 80 for line in block)
    assert block[0].endswith("~") and block[-1] == SHORT_FOOTER and "  TURN (interviewee):" in block
    # Driven for real: after every command, the last 40 lines hold the judged turn and the prompt.
    output = run(q, catalog, "o\n3\nacept\na\nc drfit\n?\nr\nq\n")
    for screen in screens(output):
        assert any(line == "  TURN (interviewee):" for line in screen), "\n".join(screen)
        assert screen[-1].startswith("> ") and len(screen) <= 40


def test_a_long_turn_is_shortened_last_and_t_prints_it_whole(tmp_path, catalog):
    q = make_queue(tmp_path, catalog, turn_repeat=(30,))
    reviewer = Reviewer(q, "ann", catalog, out=io.StringIO())
    reviewer.start()
    block = reviewer.block()
    assert any("more line(s): `t` prints the whole turn" in line for line in block)
    assert not any(line.startswith("  after (") for line in block)  # context went first
    assert any(line.startswith("  question: Question 0") for line in block)
    output = run(q, catalog, "t\nq\n")
    whole = output.split("  whole turn:\n")[1].split(FOOTER)[0]
    assert " ".join(whole.split()).count("We had a dashboard") == 30


def test_many_ticked_options_still_leave_the_turn_on_screen(tmp_path, catalog):
    q = make_queue(tmp_path, catalog, turn_repeat=(30,))
    reviewer = Reviewer(q, "ann", catalog, out=io.StringIO())
    reviewer.start()
    reviewer.selection = [o["id"] for o in reviewer.task()["options"]][:30]
    block = reviewer.block()  # too many for one line each: all options, packed in columns
    assert len(block) <= 38 and any(line.startswith("  all 36 options") for line in block)
    at = block.index("  TURN (interviewee):")
    assert block[at + 1].startswith("  > Answer 0: We had a dashboard") and "more line(s)" in block[-15]


def test_likely_options_first_and_all_of_them_on_o(tmp_path, catalog):
    q = make_queue(tmp_path, catalog)
    reviewer = Reviewer(q, "ann", catalog, out=io.StringIO())
    reviewer.start()
    block = reviewer.block()
    opts = [line for line in block if line.startswith(("  ", " ")) and ". [" in line]
    names = [re.search(r"\] +\S+ +(.*?) +\(", line).group(1) for line in opts]
    assert names[:3] == ["Drift", "Noisy labels", "Infrastructure cost"]  # categories by score
    assert names[3:5] == ["Model maintenance", "Data collection"] and names[5].startswith("Mitigation")
    assert len(opts) == 6 and "[x]" in opts[0] and "[ ]" in opts[2]
    assert any("30 more: `o` lists all 36" in line for line in block)
    reviewer.all_options = True
    block = reviewer.block()
    numbers = {int(tok) for line in block for tok in line.replace("[", " ").split() if tok.isdigit()}
    assert set(range(1, 37)) <= numbers
    # Numbers are the same in both views (and in the web reviewer): 1 is Drift, ticked; 7 is the
    # first option not among the likely ones (the catalog's first category that is not).
    assert any(" 1 [x]" in line and "Drift" in line for line in block)
    first_other = next(o for o in reviewer.task()["options"] if o["id"] not in {
        "cat:drift", "cat:noisy-labels", "cat:infrastructure-cost", "phase:model_maintenance", "phase:data_collection",
        "mitigation"})
    assert any(" 7 [ ]" in line and first_other["text"][:10] in line for line in block)


def test_each_answer_skip_and_undo_is_confirmed(tmp_path, catalog):
    q = make_queue(tmp_path, catalog)
    output = run(q, catalog, "m\na\nx\nu\ns\nq\n")
    assert "  saved: accept: Drift, Noisy labels, Model maintenance, Mitigation (the turn describes a fix) | " \
           "P07 turn 1" in output
    assert "  saved: reject (no option applies) | P07 turn 3" in output
    assert "  undone: the reject of P07 turn 3 is taken back" in output
    assert "  skipped: P07 turn 3 (comes back next session)" in output
    rows = [json.loads(x) for x in q.read_text().splitlines()]
    assert [r["answer"] for r in rows] == [None, None, None, "accept"]  # answers appended; the undone one cut
    assert rows[3]["accept"] == ["cat:drift", "cat:noisy-labels", "phase:model_maintenance", "mitigation"]


@pytest.mark.parametrize("typed, hint", [
    ("acept", "unknown command 'acept'; did you mean `a` (accept)?"),
    ("rejct", "unknown command 'rejct'; did you mean `r` (reject)?"),
    ("undp", "unknown command 'undp'; did you mean `u` (undo)?"),
    ("zzz", "unknown command 'zzz'; ? lists the commands"),
    ("c drfit", "no category 'drfit' in this task; did you mean `c drift`?"),
    ("c Noisy Lables", "no category 'Noisy Lables' in this task; did you mean `c noisy-labels`?"),
    ("p modle_training", "no phase 'modle_training' in this task; did you mean `p model_training`?"),
    ("99", "no option number 99 (1-36; `o` lists them all)"),
])
def test_a_typo_gets_the_nearest_command_or_id(tmp_path, catalog, typed, hint):
    q = make_queue(tmp_path, catalog)
    output = run(q, catalog, typed + "\nq\n")
    assert f"  ! {hint}" in output
    assert all(json.loads(x)["answer"] is None for x in q.read_text().splitlines())


def test_an_option_can_be_named_by_its_name(tmp_path, catalog):
    q = make_queue(tmp_path, catalog)
    run(q, catalog, "c noisy labels\nc infrastructure cost\np Data collection\na\nq\n")
    row = json.loads(q.read_text().splitlines()[-1])
    assert row["accept"] == ["cat:drift", "cat:infrastructure-cost", "phase:data_collection", "phase:model_maintenance"]


def test_a_task_answered_meanwhile_elsewhere_is_passed_over(tmp_path, catalog):
    from extractor.review.session import answer_task, save_answer

    q = make_queue(tmp_path, catalog)
    tasks = [json.loads(x) for x in q.read_text().splitlines()]
    out = io.StringIO()
    reviewer = Reviewer(q, "ann", catalog, out=out)
    keys = iter(["a", "a"])

    def read_line():
        k = next(keys, None)
        if k == "a" and reviewer.i == 0:  # meanwhile a browser tab answers the second task
            save_answer(q, answer_task(tasks[1], "reject", [], "ann", "2026-01-01T00:00:00Z"), catalog)
        return k

    summary = reviewer.run(read_line)
    assert "(1 task(s) answered meanwhile elsewhere: passed over)" in out.getvalue()
    assert "=== task 3/3" in out.getvalue() and summary.answered == 2 and summary.remaining == 0
    rows = [json.loads(x) for x in q.read_text().splitlines()]
    answers = {r["meta"]["id"]: r["answer"] for r in rows if r["answer"]}
    assert answers == {tasks[0]["meta"]["id"]: "accept", tasks[1]["meta"]["id"]: "reject",
                       tasks[2]["meta"]["id"]: "accept"}  # the tab's answer stands


@pytest.mark.parametrize("cols, rows", [(100, 40), (80, 30)])
def test_tmux_pane_shows_the_turn_and_the_confirmation(tmp_path, catalog, cols, rows):
    if shutil.which("tmux") is None:
        pytest.skip("tmux not installed")
    q = make_queue(tmp_path, catalog)
    session = f"qi-tui-{tmp_path.name}"[:40]
    cmd = f"cd {REPO} && {sys.executable} -m extractor review annotate {q} --annotator ann; sleep 30"
    env = ["-e", f"PYTHONPATH={REPO}", "-e", "HF_HUB_OFFLINE=1"]
    started = subprocess.run(["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", str(cols), "-y", str(rows),
                              *env, cmd], capture_output=True, text=True)
    if started.returncode != 0:
        pytest.skip(f"tmux could not start a session: {started.stderr.strip()[:200]}")

    def pane() -> list[str]:
        return subprocess.run(["tmux", "-L", session, "capture-pane", "-p", "-t", session], capture_output=True,
                              text=True).stdout.split("\n")

    def wait_for(text: str) -> list[str]:
        """The pane once ``text`` is on it and the reviewer waits at its prompt."""
        end = time.monotonic() + 20
        while time.monotonic() < end:
            lines = pane()
            filled = [line for line in lines if line.strip()]
            if any(text in line for line in lines) and filled and filled[-1].startswith(">"):
                return lines
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared:\n" + "\n".join(pane()))

    def keys(*ks: str) -> None:
        subprocess.run(["tmux", "-L", session, "send-keys", "-t", session, *ks], check=True)

    try:
        first = wait_for("=== task 1/3")
        assert any(line.startswith("  > Answer 0: We had a dashboard") for line in first)
        keys("d", "Enter")  # what the listed codes mean: one key away
        wait_for("definitions (from the catalog):")
        keys("o", "Enter")
        wait_for("all 36 options")
        keys("3", "Enter")  # option 3, as in the web reviewer: Infrastructure cost
        wait_for(" 3 [x]")
        keys("a", "Enter")
        shown = wait_for("saved: accept: Drift, Infrastructure cost, Noisy labels, Model maint")
        # The next task, its whole header-to-prompt block, is on the screen.
        assert any("=== task 2/3" in line for line in shown)
        assert any(line.startswith("  > Answer 1: We had a dashboard") for line in shown)
        assert any(line.startswith(">") for line in shown) and len(shown) <= rows + 1
        assert all(len(line) <= cols for line in shown)
    finally:
        subprocess.run(["tmux", "-L", session, "kill-server"], capture_output=True)


def test_numbers_are_the_web_reviewers_and_d_shows_the_definitions(tmp_path, catalog):
    from extractor.review.options import option_definitions
    from extractor.review.web_state import task_json

    q = make_queue(tmp_path, catalog)
    task = json.loads(q.read_text().splitlines()[0])
    web = {o["number"]: o for o in task_json(task, None, option_definitions(catalog))["options"]}
    output = run(q, catalog, "o\nd\nd 3 7\nd 99\n3\na\nq\n")
    # Every number in the terminal's full list names the option the web reviewer gives that number.
    packed = [line for line in output.split("\n") if "[x]" in line or "[ ]" in line]
    for k in (1, 3, 7, 20, 36):
        assert any(f"{k:>2} [" in line and web[k]["text"][:8] in line for line in packed), k
    assert f"    3. {web[3]['text']}: {catalog['infrastructure-cost'].definition.split()[0]}" in output
    assert f"    7. {web[7]['text']}: " in output
    assert "  ! d N: expected option numbers 1-36, found '99'" in output
    saved = json.loads(q.read_text().splitlines()[-1])
    # `3` unticked the third option (Infrastructure cost was not ticked: now it is).
    assert web[3]["id"] == "cat:infrastructure-cost" and "cat:infrastructure-cost" in saved["accept"]


def test_terminal_lines_escape_control_characters_from_transcripts(tmp_path, catalog):
    evil = "Answer 0: fine \x1b]52;c;ZXZpbA==\x07 and \x1b]0;pwned\x07 title \u202e reversed \x9b31m"
    q = make_queue(tmp_path, catalog)
    rows = [json.loads(x) for x in q.read_text().splitlines()]
    rows[0]["text"] = evil
    rows[0]["context"]["question"] = "why \x1b[2J?"
    next(o for o in rows[0]["options"] if o["id"] == "cat:drift")["text"] = "Drift \x1b[31m"
    q.write_text("".join(json.dumps(r) + "\n" for r in rows))
    output = run(q, catalog, "t\nd\na\nq\n")
    assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output and "\x9b" not in output
    assert "\\x1b]52;c;ZXZpbA==\\x07" in output and "\\u202e" in output and "why \\x1b[2J?" in output
    assert "saved: accept: Drift \\x1b[31m" in output

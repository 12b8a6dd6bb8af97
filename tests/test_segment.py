"""Tests of extractor.segment and `extractor segment`: formats, roles, bad input, the corpus bars."""

from __future__ import annotations

import codecs
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from extractor.cli import main
from extractor.errors import InputError
from extractor.segment import (
    BatchReport,
    decode_bytes,
    role_of_label,
    segment_file,
    segment_paths,
    segment_text,
)
from extractor.types import INTERVIEWEE, INTERVIEWER, Turn, normalize_text, with_ids

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "extractor" / "data" / "examples"
sys.path.insert(0, str(REPO / "scripts"))


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _simple(turns) -> list[tuple[str, str]]:
    return [(t.speaker, t.text) for t in turns]


# --------------------------------------------------------------------------- plain text


INLINE = """\
Interviewer 1: Hello. Can you present yourself?

Interviewee: I train models.
I also deploy them.

Interviewer 2: What breaks first?
Interviewee: The data.
"""


def test_inline_labels_and_continuation_lines():
    res = segment_text(INLINE, "Interview X")
    assert _simple(res.turns) == [
        (INTERVIEWER, "Hello. Can you present yourself?"),
        (INTERVIEWEE, "I train models. I also deploy them."),
        (INTERVIEWER, "What breaks first?"),
        (INTERVIEWEE, "The data."),
    ]
    assert [t.turn for t in res.turns] == [0, 1, 2, 3]
    assert [t.speaker_raw for t in res.turns] == ["Interviewer 1", "Interviewee", "Interviewer 2", "Interviewee"]
    assert res.turns[1].question == "Hello. Can you present yourself?"
    assert res.turns[3].question == "What breaks first?"
    assert res.unattributed == 0


def test_source_offsets_point_into_the_file(tmp_path):
    path = _write(tmp_path / "Interview 3.txt", INLINE)
    res = segment_file(path)
    assert res.interview == "Interview 3"
    t = res.turns[1]
    assert t.source["file"] == str(path) and t.source["line"] == 3
    span = INLINE[t.source["start"]:t.source["end"]]
    assert span.startswith("Interviewee: I train models.") and span.endswith("I also deploy them.")


def test_ids_equal_what_read_turns_computes():
    text = "Interviewer: Ok?\nInterviewee: Yeah.\nInterviewer: And?\nInterviewee: Yeah.\n"
    turns = segment_text(text, "Interview 1").turns
    blank = [Turn(t.interview, t.turn, t.speaker, t.text) for t in turns]
    assert [t.id for t in turns] == [t.id for t in with_ids(blank)]
    assert turns[1].id != turns[3].id  # repeated "Yeah." told apart


def test_question_is_the_nearest_interviewer_turn_at_most_four_back():
    lines = ["Interviewer: Q1?"] + [f"Interviewee: answer {k}." for k in range(6)]
    turns = segment_text("\n".join(lines), "I").turns
    assert [t.question for t in turns] == ["", "Q1?", "Q1?", "Q1?", "Q1?", "", ""]


def test_text_before_the_first_speaker_is_reported_not_lost():
    res = segment_text("All\n\nInterviewee: right.\nInterviewer: Good.\n", "I")
    assert _simple(res.turns)[0] == (INTERVIEWEE, "right.")
    assert res.unattributed_lines == [1]
    assert any("1 line not attributed to a speaker (line 1)" in n for n in res.notes)


def test_label_with_no_text_keeps_its_turn():
    res = segment_text("Interviewer: Stale models?\nInterviewee:\nInterviewee: Can't say.\n", "I")
    assert _simple(res.turns) == [(INTERVIEWER, "Stale models?"), (INTERVIEWEE, ""), (INTERVIEWEE, "Can't say.")]


def test_label_indented_deeper_than_usual_is_quoted_text():
    res = segment_text("Interviewer: Any question?\n Interviewee: No.\nInterviewee: Fine.\n", "I")
    assert _simple(res.turns) == [(INTERVIEWER, "Any question? Interviewee: No."), (INTERVIEWEE, "Fine.")]


def test_lowercase_and_spaced_colon_labels():
    res = segment_text("interviewer: hi\ninterviewee : hello\nInterviewer1 : ok\nInterviewee1 : sure\n", "I")
    assert [t.speaker for t in res.turns] == [INTERVIEWER, INTERVIEWEE, INTERVIEWER, INTERVIEWEE]


@pytest.mark.parametrize("label,role", [
    ("Interviewer", INTERVIEWER), ("interviewer", INTERVIEWER), ("Interviewer 1", INTERVIEWER),
    ("Interviewer1", INTERVIEWER), ("Interviewer2 2", INTERVIEWER), ("interviewr", INTERVIEWER),
    ("Intervewer 3", INTERVIEWER), ("Interviwer", INTERVIEWER), ("Moderator", INTERVIEWER), ("Q", INTERVIEWER),
    ("Interviewee", INTERVIEWEE), ("interviewee", INTERVIEWEE), ("Interviewee1", INTERVIEWEE),
    ("Interviewe", INTERVIEWEE), ("Intervieweee", INTERVIEWEE), ("Participant 2", INTERVIEWEE), ("P1", INTERVIEWEE),
    ("A", INTERVIEWEE), ("I", INTERVIEWER), ("R", INTERVIEWEE), ("Q1", None), ("Alice (Interviewer)", INTERVIEWER), ("Interviewee (Bob)", INTERVIEWEE),
    ("Alice", None), ("Unknown Speaker", None), ("Interview", None), ("Note", None), ("P", None),
])
def test_role_of_label(label, role):
    assert role_of_label(label) == role


# --------------------------------------------------------------------------- Markdown


MARKDOWN = """\
## Interview 12 - notes

### Interviewee

yeah, ready.

#### Interviewer1

Let's start. Any data issue?

**Interviewee**

Lots of missing values.

half of a sentence

**Interviewer 2:** And labels?

## interviewr

Anything else?

__Interviewee__: Noisy labels. Interviewee: the second part.

---

Created with an example transcription tool (http://example.org)
"""


def test_markdown_headings_bold_labels_and_paragraphs():
    res = segment_text(MARKDOWN, "Interview 12")
    assert _simple(res.turns) == [
        (INTERVIEWEE, "yeah, ready."),
        (INTERVIEWER, "Let's start. Any data issue?"),
        (INTERVIEWEE, "Lots of missing values. half of a sentence"),
        (INTERVIEWER, "And labels?"),
        (INTERVIEWER, "Anything else?"),
        (INTERVIEWEE, "Noisy labels. Interviewee: the second part. Created with an example transcription tool "
                      "(http://example.org)"),
    ]
    assert res.unattributed_lines == [1]  # the title heading


# --------------------------------------------------------------------------- timestamps


def test_timestamps_before_or_after_labels_go_to_source_and_inline_ones_stay():
    text = ("[00:38:00] Interviewer 1: Ready?\n"
            "00:38:05\n"
            "Interviewee [00:38:10]: Yes. [00:39:00] Go.\n"
            "Interviewer 1: [00:40:00] Next.\n"
            "Interviewee (00:41): Fine.\n")
    res = segment_text(text, "I")
    assert _simple(res.turns) == [(INTERVIEWER, "Ready?"), (INTERVIEWEE, "Yes. [00:39:00] Go."),
                                  (INTERVIEWER, "Next."), (INTERVIEWEE, "Fine.")]
    assert [t.source.get("time") for t in res.turns] == ["00:38:00", "00:38:10", "00:40:00", "00:41"]
    res = segment_text("[00:01:00]\nInterviewer: Hi.\n---\nInterviewee: Hello.\n", "I")
    assert [t.source.get("time") for t in res.turns] == ["00:01:00", None] and res.unattributed == 0
    assert res.unattributed == 0


# --------------------------------------------------------------------------- named speakers


NAMED = """\
Alice: Welcome. What do you work on?
Bob: Fraud models for an insurer, mostly gradient boosting on claims data.
Bob: The labels arrive a year late, which is our biggest problem by far.
Alice: How do you handle it?
Bob: We drop the most recent year when training.
Note: the call dropped here.
"""


def test_named_speakers_default_rule_most_words_is_interviewee():
    res = segment_text(NAMED, "I")
    assert res.roles == {"Alice": INTERVIEWER, "Bob": INTERVIEWEE}
    assert any("roles guessed" in n and "--interviewer" in n for n in res.notes)
    assert res.turns[-1].text.endswith("Note: the call dropped here.")  # "Note" used once: not a speaker


def test_named_speakers_interviewer_option_wins():
    res = segment_text(NAMED, "I", interviewers="bob")
    assert res.roles == {"Alice": INTERVIEWEE, "Bob": INTERVIEWER}
    assert not any("guessed" in n for n in res.notes)
    res = segment_text(NAMED, "I", interviewees=["Alice"])
    assert res.roles == {"Alice": INTERVIEWEE, "Bob": INTERVIEWER}


def test_name_used_once_needs_to_be_given():
    text = "Interviewer: Hi Carol.\nInterviewee: Hello.\nCarol: One more thing.\n"
    assert len(segment_text(text, "I").turns) == 2
    res = segment_text(text, "I", interviewees="Carol")
    assert _simple(res.turns)[-1] == (INTERVIEWEE, "One more thing.")


# --------------------------------------------------------------------------- captions


VTT = """\
WEBVTT

NOTE made up

1
00:00:01.000 --> 00:00:03.000
<v Maria>Hello, what does your team build?

2
00:00:03.500 --> 00:00:06.000
<v.loud Sam>A demand forecast
for depots, &amp; a delay model.

3
00:00:06.000 --> 00:00:08.000
<v Sam>It runs <i>every night</i>.</v>

00:00:08.500 --> 00:00:09.000
<v Maria>Thanks!
"""


def test_vtt_voice_tags_merge_consecutive_cues(tmp_path):
    res = segment_file(_write(tmp_path / "call.vtt", VTT))
    assert res.format == "vtt"
    assert [(t.speaker_raw, t.speaker, t.text) for t in res.turns] == [
        ("Maria", INTERVIEWER, "Hello, what does your team build?"),
        ("Sam", INTERVIEWEE, "A demand forecast for depots, & a delay model. It runs every night."),
        ("Maria", INTERVIEWER, "Thanks!"),
    ]
    assert res.turns[1].source["time"] == "00:00:03.500" and res.turns[1].source["line"] == 11


SRT = """\
1
00:00:01,000 --> 00:00:03,000
Interviewer: Did the data drift?

2
00:00:03,500 --> 00:00:06,000
Interviewee: Yes, after a client left.
We retrain monthly now.

3
00:00:06,500 --> 00:00:07,000
- Interviewer: Thanks.
"""


def test_srt_with_name_colon_speakers(tmp_path):
    res = segment_file(_write(tmp_path / "call.srt", SRT))
    assert _simple(res.turns) == [(INTERVIEWER, "Did the data drift?"),
                                  (INTERVIEWEE, "Yes, after a client left. We retrain monthly now."),
                                  (INTERVIEWER, "Thanks.")]


def test_vtt_names_with_interviewer_option_and_stray_block(tmp_path):
    vtt = ("WEBVTT\n\n00:01.000 --> 00:02.000\nDana Smith: Hi Lee.\n\nthis block has no timing\n\n"
           "00:02.000 --> 00:04.000\nLee: Hi. Short answer.\n\n00:04.000 --> 00:05.000\nDana Smith: Ok.\n\n"
           "00:05.000 --> 00:06.000\nLee: Bye.\n")
    res = segment_file(_write(tmp_path / "x.vtt", vtt), interviewers=["Dana Smith"])
    assert [(t.speaker_raw, t.speaker) for t in res.turns] == [
        ("Dana Smith", INTERVIEWER), ("Lee", INTERVIEWEE), ("Dana Smith", INTERVIEWER), ("Lee", INTERVIEWEE)]
    assert res.unattributed_lines == [6]


# --------------------------------------------------------------------------- docx


def test_docx_paragraphs_headings_and_tables(tmp_path):
    docx = pytest.importorskip("docx")
    doc = docx.Document()
    doc.add_paragraph("Interviewer 1: How do you evaluate models?")
    doc.add_heading("Interviewee", level=2)
    doc.add_paragraph("With a weighted error.")
    doc.add_paragraph("And the worst depots separately.")
    table = doc.add_table(rows=2, cols=2)
    for row, (who, said) in zip(table.rows, [("Interviewer 2", "Any drift?"), ("Interviewee", "Yes.")]):
        row.cells[0].text, row.cells[1].text = who, said
    path = tmp_path / "Interview 77.docx"
    doc.save(path)
    res = segment_file(path)
    assert res.format == "docx" and res.interview == "Interview 77"
    assert _simple(res.turns) == [(INTERVIEWER, "How do you evaluate models?"),
                                  (INTERVIEWEE, "With a weighted error. And the worst depots separately."),
                                  (INTERVIEWER, "Any drift?"), (INTERVIEWEE, "Yes.")]


# --------------------------------------------------------------------------- encodings and bad input


def test_latin1_file_is_read_with_a_warning(tmp_path):
    path = _write(tmp_path / "fr.txt", "Interviewer: Ça va?\nInterviewee: Très bien, données propres.\n", "latin-1")
    res = segment_file(path)
    assert res.turns[1].text == "Très bien, données propres."
    assert res.encoding == "cp1252"
    assert any("not UTF-8" in n and "offset" in n for n in res.notes)


@pytest.mark.parametrize("encoding,bom", [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
                                          ("utf-8", codecs.BOM_UTF8), ("utf-16-le", b""), ("utf-32-le", codecs.BOM_UTF32_LE)])
def test_utf16_utf8_bom_and_bomless_utf16(tmp_path, encoding, bom):
    path = tmp_path / "x.txt"
    path.write_bytes(bom + "Interviewer: Déjà vu?\nInterviewee: Oui – naïve.\n".encode(encoding))
    res = segment_file(path)
    assert _simple(res.turns) == [(INTERVIEWER, "Déjà vu?"), (INTERVIEWEE, "Oui – naïve.")]


@pytest.mark.parametrize("content,found", [
    (b"", "found an empty file"),
    (b"  \n\n \t\n", "found only whitespace"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "found a PNG image"),
    (b"Interviewer: hi\x00\x01\x02" + bytes(range(256)) * 40, "found binary data"),
    (b"%PDF-1.7 \n1 0 obj", "found a PDF file"),
    (b"We talked about data.\nThen about models.\nNo labels anywhere.\n", "found none in 4 lines"),
    (b"Interviewer:\nInterviewee:\n", "found only labels with no text"),
])
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, content, found):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(InputError) as e:
        segment_file(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: expected ") and found in msg and "\n" not in msg


def test_other_bad_paths(tmp_path):
    with pytest.raises(InputError, match=r"missing\.txt: expected an existing transcript file, found no such file"):
        segment_file(tmp_path / "missing.txt")
    with pytest.raises(InputError, match=r"report\.pdf: expected a \.txt, .*found a \.pdf file; export it to \.txt"):
        segment_file(_write(tmp_path / "report.pdf", "Interviewer: hi\nInterviewee: ho\n"))
    with pytest.raises(InputError, match=r"broken\.docx: expected a Word \.docx document"):
        segment_file(_write(tmp_path / "broken.docx", "Interviewer: not a zip\n"))
    with pytest.raises(InputError, match=r"expected a transcript of at most 1 MiB, found 1\.5 MiB; raise the limit"):
        segment_file(_write(tmp_path / "big.txt", "Interviewer: hi\n" * 100_000), max_bytes=2**20)


def test_decode_bytes_rejects_control_character_soup():
    with pytest.raises(InputError, match="control characters"):
        decode_bytes(bytes(range(1, 32)) * 100, "blob")


def test_a_50_mb_file_is_segmented(tmp_path):
    # Long monologues keep this fast; scripts/bench_segment.py --big-mb 50 times short turns.
    answer = ("we had missing values and noisy labels from the scanners " * 1800 + "\n")
    block = "Interviewer 1: And then?\nInterviewee: " + answer
    n = 50 * 2**20 // len(block) + 1
    path = _write(tmp_path / "Interview 50.txt", block * n)
    assert path.stat().st_size >= 50 * 2**20
    res = segment_file(path)
    assert len(res.turns) == 2 * n and res.n_interviewee == n and res.unattributed == 0
    assert res.turns[-1].text == answer.strip()


# --------------------------------------------------------------------------- batches and the CLI


def _mixed_dir(tmp_path: Path) -> Path:
    d = tmp_path / "batch"
    d.mkdir()
    _write(d / "Interview 1.txt", INLINE)
    _write(d / "Interview 2.md", MARKDOWN)
    (d / "empty.txt").write_bytes(b"")
    (d / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    _write(d / "notes.txt", "just some notes\nwith no speakers\n")
    _write(d / "Interview 3.txt", "Interviewer: Ça?\nInterviewee: Été.\n", "latin-1")
    (d / "Interview 4.txt").write_bytes(codecs.BOM_UTF16_LE + "Interviewer: Prêt?\nInterviewee: Oui.\n".encode("utf-16-le"))
    _write(d / "huge.txt", "Interviewer: Long?\nInterviewee: " + "very " * 1000 + "long.\n")
    (d / ".hidden.txt").write_bytes(b"\x00")
    return d


def test_segment_paths_skips_bad_files_and_keeps_the_rest(tmp_path):
    report = BatchReport()
    turns = list(segment_paths([_mixed_dir(tmp_path)], report=report, max_bytes=4096))
    assert [r.interview for r in report.results] == ["Interview 1", "Interview 2", "Interview 3", "Interview 4"]
    assert sorted(p.name for p, _ in report.failures) == ["empty.txt", "huge.txt", "notes.txt", "photo.png"]
    assert len(turns) == report.turns == 4 + 6 + 2 + 2
    assert report.unattributed == 1


def test_cli_mixed_directory(tmp_path, capsys):
    out = tmp_path / "turns.jsonl"
    assert main(["segment", str(_mixed_dir(tmp_path)), "-o", str(out), "--max-mb", "0.004"]) == 0
    err = capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 14
    assert {r["interview"] for r in rows} == {"Interview 1", "Interview 2", "Interview 3", "Interview 4"}
    assert set(rows[0]) >= {"interview", "turn", "speaker", "speaker_raw", "text", "question", "id", "source"}
    assert rows[-1]["text"] == "Oui." and rows[-3]["text"] == "Été."
    assert "segmented 4 files: 14 turns (7 interviewee, 7 interviewer); 1 line not attributed to a speaker; " \
           "4 files skipped" in err
    assert "empty.txt: expected a transcript, found an empty file" in err
    assert "photo.png: expected a text transcript, found a PNG image" in err
    assert "notes.txt: expected speaker labels" in err
    assert "huge.txt: expected a transcript of at most 4.1 KiB, found 4.9 KiB; raise the limit with --max-mb" in err
    assert "Interview 3.txt: not UTF-8" in err
    assert "Interview 2.md: 1 line not attributed to a speaker (line 1)" in err
    assert main(["segment", str(tmp_path / "batch"), "-o", str(out), "--strict", "--force"]) == 1


def test_cli_nothing_readable_exits_1_and_keeps_old_output(tmp_path, capsys):
    out = _write(tmp_path / "turns.jsonl", "precious\n")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"")
    assert main(["segment", str(bad), "-o", str(out), "--force"]) == 1
    assert "error: no transcript could be read (1 file skipped)" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    empty = tmp_path / "emptydir"
    empty.mkdir()
    assert main(["segment", str(empty), "-o", str(out), "--force"]) == 1
    assert f"error: no files found in {empty}" in capsys.readouterr().err


def test_cli_stdout_interviewer_option_and_bad_max_mb(tmp_path, capsys):
    path = _write(tmp_path / "call.txt", NAMED)
    assert main(["segment", str(path), "--interviewer", "Bob"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["speaker"] for r in rows][:2] == [INTERVIEWEE, INTERVIEWER]
    assert "segmented 1 file: 5 turns" in captured.err
    assert main(["segment", str(path), "--max-mb", "-1"]) == 2
    assert "error: --max-mb: expected a size in MiB >= 0, found -1" in capsys.readouterr().err


def test_bundled_example_segments(tmp_path):
    out = tmp_path / "x.jsonl"
    assert main(["segment", str(EXAMPLES / "interview_example.txt"), "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert 25 <= len(rows) <= 45
    assert Counter(r["speaker"] for r in rows)[INTERVIEWEE] >= 15
    assert any(r["source"].get("time") for r in rows)
    res = segment_file(EXAMPLES / "captions_example.vtt")
    assert [t.speaker for t in res.turns] == [INTERVIEWER, INTERVIEWEE] * 3


# --------------------------------------------------------------------------- the shared corpus


@pytest.fixture(scope="module")
def corpus_turns(corpus):
    from extractor.jsonl import read_turns

    gold: dict[str, list[Turn]] = defaultdict(list)
    for t in read_turns(corpus / "gold" / "turns.jsonl"):
        gold[t.interview].append(t)
    report = BatchReport()
    pred: dict[str, list[Turn]] = defaultdict(list)
    for t in segment_paths([corpus / "transcripts"], report=report):
        pred[t.interview].append(t)
    return gold, pred, report


@pytest.mark.corpus
def test_corpus_transcripts_match_gold_turns(corpus_turns):
    from bench_segment import compare

    gold, pred, report = corpus_turns
    assert len(report.results) == 31 and not report.failures
    rows = {iv: compare(gold[iv], pred[iv]) for iv in gold}
    matched = sum(r["matched_interviewee"] for r in rows.values())
    total = sum(r["gold_interviewee"] for r in rows.values())
    assert matched / total >= 0.98
    # Exact per-interview recall is below 98% only where the gold text itself differs from
    # the transcript (pseudonyms, "pre- trained", the export credit): see README.
    for iv, r in rows.items():
        assert r["recall"] >= 0.90, (iv, r)
        assert r["recall_near"] >= 0.95, (iv, r)
        assert r["ids_equal"] == r["matched_interviewee"], iv
        assert r["question_agree"] >= 0.85, (iv, r)
    assert sum(r["recall"] >= 0.98 for r in rows.values()) >= 26


@pytest.mark.corpus
def test_corpus_markdown_interview_9_matches_its_transcript(corpus):
    from bench_segment import compare

    txt = segment_file(corpus / "transcripts" / "Interview 9.txt").turns
    md = segment_file(corpus / "markdown" / "Interview 9.md").turns
    r = compare(txt, md)
    assert len(md) == len(txt)
    assert r["recall_near"] >= 0.98 and r["recall"] >= 0.95


@pytest.mark.corpus
def test_corpus_markdown_interview_6_every_word_lands_in_a_turn(corpus):
    import re

    path = corpus / "markdown" / "Interview 6.md"
    res = segment_file(path)
    got = Counter(w for t in res.turns for w in t.text.split())
    want: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or re.fullmatch(r"\*\*[^*]+\*\*|-{3,}", line):
            continue  # speaker headings, bold labels, rules: markup, not words
        line = re.sub(r"^(\*\*)?Interv\w*\s*\d*:?(\*\*)?:?\s", "", line)
        want.update(line.split())
    missing = want - got
    assert not missing, list(missing.items())[:10]
    assert res.unattributed_lines == [1]  # the title heading "# Interview 6 - ..."
    assert normalize_text(res.turns[0].text)


def test_short_lines_do_not_become_speakers():
    text = ("Maria: What went wrong?\nSam: The provider changed units.\nGreat\nMaria: And then?\n"
            "Sam: We added range checks.\nGreat\nThe thing is: it was silent.\nThe thing is: nobody noticed.\n")
    res = segment_text(text, "I")
    assert set(res.roles) == {"Maria", "Sam"}
    assert res.turns[1].text == "The provider changed units. Great"
    assert res.turns[-1].text.endswith("The thing is: it was silent. The thing is: nobody noticed.")


def test_otter_style_name_and_time_lines():
    text = "Maria Lopez  0:03\nHi, thanks for coming.\n\nSam  0:07\nHappy to.\n\nMaria Lopez  0:09\nLet's start.\n"
    res = segment_text(text, "I", interviewers="Maria Lopez")
    assert [(t.speaker_raw, t.speaker, t.text) for t in res.turns] == [
        ("Maria Lopez", INTERVIEWER, "Hi, thanks for coming."), ("Sam", INTERVIEWEE, "Happy to."),
        ("Maria Lopez", INTERVIEWER, "Let's start.")]
    assert res.turns[1].source["time"] == "0:07"


def test_captions_are_sniffed_whatever_the_suffix_and_encoding(tmp_path):
    srt = _write(tmp_path / "call.txt", SRT)
    assert segment_file(srt).format == "srt" and len(segment_file(srt).turns) == 3
    vtt = tmp_path / "call2.txt"
    vtt.write_bytes(codecs.BOM_UTF16_LE + VTT.encode("utf-16-le"))
    res = segment_file(vtt)
    assert res.format == "vtt" and res.encoding == "utf-16" and len(res.turns) == 3


def test_given_names_match_by_first_words_and_unknown_names_are_reported():
    res = segment_text(NAMED.replace("Alice:", "Alice Martin:"), "I", interviewers="alice")
    assert res.roles == {"Alice Martin": INTERVIEWER, "Bob": INTERVIEWEE}
    res = segment_text(NAMED, "I", interviewers="Zed")
    assert res.roles == {"Alice": INTERVIEWEE, "Bob": INTERVIEWEE}
    assert any("none of the names given with --interviewer/--interviewee is a speaker here (speakers: Alice, Bob)" in n
               for n in res.notes)
    assert any("no interviewee turn" in n for n in segment_text(NAMED, "I", interviewers="Alice,Bob").notes)


def test_directories_expand_in_natural_order_without_hidden_files(tmp_path):
    from extractor.segment import expand_paths, interview_name

    for name in ("Interview 10.txt", "Interview 2.txt", ".DS_Store", "Interview 9.md"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in expand_paths([tmp_path])] == ["Interview 2.txt", "Interview 9.md", "Interview 10.txt"]
    assert interview_name(tmp_path / "Interview 10.txt") == "Interview 10"


def test_same_interview_name_twice_skips_the_second_file(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    _write(a / "Interview 1.txt", INLINE), _write(b / "Interview 1.md", INLINE)
    report = BatchReport()
    turns = list(segment_paths([a, b], report=report))
    assert len(report.results) == 1 and {t.source["file"] for t in turns} == {str(a / "Interview 1.txt")}
    assert report.failures == [(b / "Interview 1.md",
                                f"{b / 'Interview 1.md'}: expected a unique interview name (the file name without "
                                f"suffix), found 'Interview 1' also from {a / 'Interview 1.txt'}; rename one of the "
                                "files")]


def test_fast_normalize_text_equals_the_regex_form():
    import re

    for s in ["  a \u00a0b\u2028c\x1c d\t\n e  ", "", " ", "x", "a\r\nb", "\u3000wide\u3000space"]:
        assert normalize_text(s) == re.sub(r"\s+", " ", s).strip()


# --- hostile inputs (issue 12): real special files, a real .docx bomb, peak memory ----------------


def test_cli_dev_zero_is_refused_at_once(tmp_path):
    from hostile import assert_one_line_error, run_cli

    run = run_cli(["segment", "/dev/zero", "-o", tmp_path / "t.jsonl"], tmp_path, timeout=60)
    assert run.rc == 1 and "Traceback" not in run.err
    assert "skipped /dev/zero: expected a transcript file, found a character device" in run.err
    assert_one_line_error(run, "no transcript could be read (1 file skipped)")
    assert run.peak_mib < 1024 and not (tmp_path / "t.jsonl").exists()


def test_cli_fifo_in_an_input_directory_does_not_hang_the_batch(tmp_path):
    from hostile import run_cli

    d = tmp_path / "in"
    d.mkdir()
    _write(d / "Interview 1.txt", "Interviewer: Hi?\nInterviewee: Our data drifts every week.\n")
    os.mkfifo(d / "Interview 2.txt")
    run = run_cli(["segment", d, "-o", tmp_path / "t.jsonl"], tmp_path, timeout=60)  # a hang fails here
    assert run.rc == 0, run.err
    assert "Interview 2.txt: expected a transcript file, found a FIFO (named pipe)" in run.err
    assert [json.loads(x)["interview"] for x in (tmp_path / "t.jsonl").read_text().splitlines()] == ["Interview 1"] * 2


def test_cli_docx_zip_bomb_is_refused_in_bounded_memory(tmp_path):
    """A 1 MiB .docx holding a 1 GiB document.xml (the issue measured 2.6 GB under segment)."""
    import zipfile

    from hostile import assert_one_line_error, run_cli, zip_bomb_member

    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zip_bomb_member(zf, "word/document.xml", 1024)
    assert bomb.stat().st_size < 2 * 2**20
    run = run_cli(["segment", bomb, "-o", tmp_path / "t.jsonl"], tmp_path, timeout=120)
    assert ("bomb.docx: expected archive members of at most 64 MiB uncompressed, found 'word/document.xml' of "
            "1024 MiB") in run.err
    assert_one_line_error(run, "no transcript could be read")
    assert run.peak_mib < 1024


def test_docx_under_the_member_cap_but_over_max_mb_is_refused(tmp_path):
    import zipfile

    from hostile import zip_bomb_member

    bomb = tmp_path / "b.docx"
    with zipfile.ZipFile(bomb, "w") as zf:
        zip_bomb_member(zf, "word/document.xml", 3)
    with pytest.raises(InputError, match=r"b.docx: expected archive members of at most 2 MiB uncompressed"):
        segment_file(bomb, max_bytes=2 * 2**20)


def test_cli_segment_refuses_to_overwrite_without_force_and_never_its_input(tmp_path, capsys):
    src = _write(tmp_path / "Interview 1.txt", "Interviewer: Hi?\nInterviewee: Our data drifts every week.\n")
    out = _write(tmp_path / "turns.jsonl", "precious\n")
    assert main(["segment", str(src), "-o", str(out)]) == 1
    assert capsys.readouterr().err == (f"error: {out}: expected a new turns file, found an existing one; "
                                       "pass --force to overwrite it\n")
    assert out.read_text() == "precious\n"
    for force in ([], ["--force"]):
        assert main(["segment", str(src), "-o", str(src), *force]) == 1
        assert "expected a turns file other than the input, found the input itself" in capsys.readouterr().err
    assert src.read_text().startswith("Interviewer: Hi?")
    assert main(["segment", str(tmp_path), "-o", str(src), "--force"]) == 1  # its input via the directory
    assert "found the input itself" in capsys.readouterr().err
    assert main(["segment", str(src), "-o", str(out), "--force"]) == 0
    assert json.loads(out.read_text().splitlines()[0])["interview"] == "Interview 1"


@pytest.mark.parametrize("where, found", [("parent_file", "expected a directory above the turns file, found the file"),
                                          ("directory", "expected a turns file, found a directory")])
def test_cli_segment_bad_output_paths_are_one_line(tmp_path, capsys, where, found):
    src = _write(tmp_path / "Interview 1.txt", "Interviewer: Hi?\nInterviewee: Our data drifts every week.\n")
    target = src / "t.jsonl" if where == "parent_file" else tmp_path
    assert main(["segment", str(src), "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and found in err and err.count("\n") == 1


def test_cli_segment_disk_full_is_one_line_and_keeps_the_old_output(tmp_path, capsys, monkeypatch):
    import errno

    src = _write(tmp_path / "Interview 1.txt", "Interviewer: Hi?\nInterviewee: Our data drifts every week.\n")
    out = _write(tmp_path / "turns.jsonl", "old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main(["segment", str(src), "-o", str(out), "--force"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (f"error: {out}: expected a writable output, found no space "
                                                        "left on the device; nothing was written there")
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["Interview 1.txt",
                                                                                        "turns.jsonl"]


def test_docx_xml_part_over_its_cap_is_refused(tmp_path, monkeypatch):
    import docx

    import extractor.segment.word as seg

    doc = docx.Document()
    doc.add_paragraph("Interviewer: hello there, how are you doing today with the data?")
    doc.save(tmp_path / "a.docx")
    monkeypatch.setattr(seg, "MAX_DOCX_XML_BYTES", 100)
    with pytest.raises(InputError, match=r"a.docx: expected Word XML parts of at most 0.1 KiB, found '.*' of"):
        segment_file(tmp_path / "a.docx")


# --- text is data (issue 20): line endings, control and invisible characters -----------------------


@pytest.mark.parametrize("brk", ["\r", "\r\n", "\x85", "\u2028", "\u2029"])
def test_every_line_ending_style_separates_turns(brk):
    text = brk.join(["Interviewer: hello there", "Interviewee: the data was bad", "Interviewer: why",
                     "Interviewee: labels were noisy"])
    res = segment_text(text, "iv")
    assert [t.text for t in res.turns] == ["hello there", "the data was bad", "why", "labels were noisy"]
    assert [t.source["line"] for t in res.turns] == [1, 2, 3, 4]
    assert not res.kept_label_lines and not res.notes


@pytest.mark.parametrize("junk", ["\u200b", "\u200d", "\u202e", "\u2066", "\ufeff", "\u00ad", "\u2060", "\u200f"])
def test_invisible_characters_inside_a_speaker_label_cannot_merge_turns(junk):
    text = (f"Interviewer: hello\nInter{junk}viewee: the data was bad\nInterviewer: why\n"
            f"{junk}Interviewee{junk}: labels were noisy\n")
    res = segment_text(text, "iv")
    assert [(t.speaker, t.text) for t in res.turns] == [
        (INTERVIEWER, "hello"), (INTERVIEWEE, "the data was bad"), (INTERVIEWER, "why"),
        (INTERVIEWEE, "labels were noisy")]
    assert res.removed_invisible == 3
    assert any("3 invisible formatting characters" in n for n in res.notes)


def test_control_characters_are_dropped_from_turn_text_and_counted():
    text = "Interviewer: hi\nInterviewee: bad \x1b]52;c;ZXZpbA==\x07 data \x1b[31mred\x00 end\n"
    res = segment_text(text, "iv")
    assert res.turns[1].text == "bad ]52;c;ZXZpbA== data [31mred end"
    assert all(ord(c) >= 32 for t in res.turns for c in t.text + t.speaker_raw)
    assert res.dropped_controls == 4 and any("4 control characters" in n for n in res.notes)
    # Offsets still point into the text as it was read.
    start, end = res.turns[1].source["start"], res.turns[1].source["end"]
    assert text[start:end].startswith("Interviewee: bad \x1b")


def test_captions_drop_controls_spelled_as_entities():
    vtt = ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Alice>hello &#27;[2J there\n\n"
           "00:00:02.000 --> 00:00:03.000\n<v B\u200bob>the data &#x202e;was bad\n\n"
           "00:00:03.000 --> 00:00:04.000\n<v Bob>and more\n")
    res = segment_text(vtt, "iv", fmt="captions")
    assert [(t.speaker_raw, t.text) for t in res.turns] == [("Alice", "hello [2J there"),
                                                             ("Bob", "the data was bad and more")]
    assert res.removed_invisible == 2  # (html.unescape already drops &#27;)


def test_label_like_lines_kept_inside_a_turn_are_reported():
    text = "Interviewer: hello\nInterviewee: the data was bad\n  Interviewer: quoted\nInterviewee: yes\n"
    res = segment_text(text, "iv")
    assert len(res.turns) == 3 and res.kept_label_lines == [3]
    assert any("starting like a speaker label kept as text of the turn before (line 3)" in n for n in res.notes)


def test_cli_summary_never_says_nothing_was_lost(tmp_path):
    from hostile import run_cli

    src = tmp_path / "in"
    src.mkdir()
    (src / "Interview 1.txt").write_text("Interviewer: hi\nInter\u200bviewee: bad \x1b[2J data\n"
                                         " Interviewer: quoted\nInterviewee: ok\n", encoding="utf-8")
    run = run_cli(["segment", str(src), "-o", str(tmp_path / "t.jsonl")], tmp_path)
    assert run.rc == 0, run.err
    assert "\x1b" not in run.err and "\x1b" not in (tmp_path / "t.jsonl").read_text()
    summary = run.err_lines[-1]
    assert "2 control or invisible characters removed" in summary
    assert "1 line starting like a speaker label kept inside the turn before" in summary


def test_escape_sequences_in_file_names_and_text_never_reach_the_terminal(tmp_path):
    from hostile import run_cli

    src = tmp_path / "in"
    src.mkdir()
    (src / "evil\x1b]0;pwned\x07.txt").write_text("no labels \x1b[2J here\n", encoding="utf-8")
    (src / "Interview 2.txt").write_text("Interviewer: hi \x1b]52;c;ZXZpbA==\x07\nInterviewee: fine\n", encoding="utf-8")
    run = run_cli(["segment", str(src), "-o", "-"], tmp_path)
    assert run.rc == 0, run.err
    assert "\x1b" not in run.err and "\x07" not in run.err and "\x1b" not in run.out
    assert "skipped" in run.err and "evil\\x1b]0;pwned\\x07.txt" in run.err


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_cli_segment_max_mb_must_be_a_finite_size(tmp_path, capsys, value):
    (tmp_path / "a.txt").write_text("Interviewer: hi\nInterviewee: ok\n", encoding="utf-8")
    assert main(["segment", str(tmp_path / "a.txt"), "-o", "-", "--max-mb", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --max-mb: expected a size in MiB >= 0, found") and len(err.splitlines()) == 1

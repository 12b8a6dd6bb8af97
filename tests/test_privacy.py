"""Personal-data check: what it flags, what it must not flag, file:line locations."""

from __future__ import annotations

from extractor.privacy import Finding, scan_file, scan_paths, scan_text


def _kinds(text):
    return [(f.kind, f.text) for f in scan_text(text)]


def test_emails_and_phone_numbers():
    got = _kinds("Write to jane.doe@example.org or call +1 514-555-0199.\nOffice: (514) 555 0100, fax 514.555.0111")
    assert ("email", "jane.doe@example.org") in got
    assert ("phone", "+1 514-555-0199") in got
    assert ("phone", "(514) 555 0100") in got and ("phone", "514.555.0111") in got


def test_timestamps_years_and_counts_are_not_phones():
    text = "[00:38:00] In 2019 we had 1000000 rows, version 3.2.1, ratio 0.75, and 12 345 users."
    assert [k for k, _ in _kinds(text)] == []


def test_person_names_from_patterns():
    got = _kinds("Then Dr. Smith reviewed it.\nHi, my name is Paul Martin and I lead the team.\n"
                 "We asked Sarah about the pipeline.")
    assert ("name", "Dr. Smith") in got
    assert ("name", "my name is Paul Martin") in got
    assert ("name", "Sarah") in got


def test_speaker_label_with_a_full_name():
    got = _kinds("John Carter: so tell me more\nInterviewer 1: yes\n**Interviewee**: fine")
    assert got == [("name", "John Carter")]


def test_pseudonyms_and_sentence_starts_are_not_flagged():
    text = ("Interviewer 2: We worked at Company 1 in Country 1 with University 1.\n"
            "Interviewee: Mark the rows as bad. Grace periods are short. It was frank feedback, sir. If so, yes.\n"
            "Interviewer: Thanks Mr. What did you do next?\n"
            "Speaker 3: Machine Learning Engineer at Company 2.")
    assert _kinds(text) == []


def test_locations_and_paths(tmp_path):
    p = tmp_path / "Interview 1.txt"
    p.write_text("Interviewer: hello\n\nInterviewee: reach me at a.b@example.com\n", encoding="utf-8")
    (tmp_path / "Interview 2.txt").write_text("Interviewee: nothing here\n", encoding="utf-8")
    found = scan_file(p)
    assert found == [Finding(str(p), 3, "email", "a.b@example.com", "e-mail pattern")]
    assert str(found[0]).startswith(f"{p}:3: possible email")
    assert list(scan_paths(sorted(tmp_path.iterdir()))) == found


def test_names_the_ux_walk_found_missed_are_flagged():
    text = ("Interviewee: I sent it to Ricardo and to Ali V yesterday.\n"
            "Interviewee: Mario Debt wrote the loader. Yeah, that's Ed.\n")
    names = [f.text for f in scan_text(text) if f.kind == "name"]
    assert names == ["Ricardo", "Ali V", "Mario Debt", "Ed"]


def test_given_names_that_are_words_need_a_surname_at_a_sentence_start():
    text = ("Interviewee: Will you look? Grace periods are short. In May we shipped it in Julia.\n"
            "Interviewee: Then we asked Will about it. Grace Kelly helped.\n")
    assert _kinds(text) == [("name", "Will"), ("name", "Grace Kelly")]


def test_a_single_word_speaker_label_that_is_a_given_name():
    assert ("name", "Ricardo") in _kinds("Ricardo: so we started\nInterviewer: ok")


def test_initial_i_and_placeholder_x_are_not_surnames():
    assert _kinds("Interviewee: Can I help? We worked with Company X and Journal X.") == []


def test_bench_privacy_inserts_and_counts(tmp_path):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "scripts"))
    from bench_privacy import insert_names

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "Interview 1.txt").write_text("Interviewer: hi\nInterviewee: the data was bad\n" * 5, encoding="utf-8")
    out = tmp_path / "o"
    out.mkdir()
    inserted = insert_names(corpus, out, 5, seed=0)
    found = {(f.line, f.text) for f in scan_paths([out / "Interview 1.txt"]) if f.kind == "name"}
    assert len(inserted) == 5 and all(any(x["key"] in t for ln, t in found if ln == x["line"]) for x in inserted)

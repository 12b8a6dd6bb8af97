"""train.py and the `train` / `predict` CLI: corrections override gold, files in, files out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_classify import CATALOG_YAML, FAST, HASHING, tiny_turns

from extractor.classify import IssueClassifier, TrainConfig
from extractor.cli import main
from extractor.errors import InputError, ModelError
from extractor.jsonl import read_jsonl, write_jsonl
from extractor.train import load_training_turns, train_model


@pytest.fixture
def files(tmp_path):
    cat = tmp_path / "catalog.yaml"
    cat.write_text(CATALOG_YAML)
    turns = tmp_path / "turns.jsonl"
    # the gold file has no ids: read_turns fills them in
    write_jsonl(turns, [{k: v for k, v in t.to_dict().items() if k != "id"} for t in tiny_turns()])
    return tmp_path, turns, cat


def correction(turn_id: str, accept: list[str]) -> dict:
    return {"text": "-", "meta": {"id": turn_id}, "options": [{"id": a, "text": a} for a in accept],
            "accept": accept, "answer": "accept", "annotator": "me", "timestamp": "2026-01-01T00:00:00Z"}


def test_load_training_turns_applies_corrections(files):
    tmp, turns_path, cat = files
    from extractor.catalog import load_catalog

    turns = load_training_turns([turns_path])
    target = next(t for t in turns if t.is_interviewee and not t.labels.categories)
    fix = tmp / "queue.jsonl"
    write_jsonl(fix, [correction(target.id, ["cat:explainability"])])
    fixed = load_training_turns([turns_path, fix], load_catalog(cat))
    assert len(fixed) == len(turns)
    got = next(t for t in fixed if t.id == target.id)
    assert got.labels.categories == ("explainability",) and got.label_source == "review"


def test_load_training_turns_needs_a_turns_file(files):
    tmp, _, _ = files
    fix = tmp / "queue.jsonl"
    write_jsonl(fix, [correction("abc", ["cat:drift"])])
    with pytest.raises(InputError, match="expected at least one turns JSONL file"):
        load_training_turns([fix])
    (tmp / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match="empty.jsonl: expected at least one JSON line"):
        load_training_turns([tmp / "empty.jsonl"])


def test_same_turns_file_twice_is_refused(files):
    _, turns_path, _ = files
    with pytest.raises(InputError, match="each turn once"):
        load_training_turns([turns_path, turns_path])


def test_train_model_refuses_to_overwrite(files):
    tmp, turns_path, cat = files
    out = tmp / "model"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ModelError, match="pass --force"):
        train_model([turns_path], out, config=HASHING, train_config=TrainConfig(**FAST), catalog=cat)
    assert (out / "keep.txt").exists()


def test_train_model_without_labels(files):
    tmp, _, cat = files
    unl = tmp / "unlabelled.jsonl"
    write_jsonl(unl, [{"interview": "I", "turn": 0, "speaker": "interviewee", "text": "hello"}])
    with pytest.raises(InputError, match="labelled interviewee turns"):
        train_model([unl], tmp / "m", config=HASHING, train_config=TrainConfig(**FAST), catalog=cat)


def test_cli_train_and_predict(files, capsys, monkeypatch):
    tmp, turns_path, cat = files
    out = tmp / "m"
    clf = train_model([turns_path], out, config=HASHING, train_config=TrainConfig(**FAST), catalog=cat)
    assert clf.card_["training"]["examples"] == 16
    preds_path = tmp / "preds.jsonl"
    assert main(["predict", str(turns_path), "--model", str(out), "-o", str(preds_path)]) == 0
    rows = list(read_jsonl(preds_path))
    assert len(rows) == 16
    assert set(rows[0]) >= {"interview", "turn", "id", "categories", "phases", "mitigation", "scores", "evidence"}
    assert len(rows[0]["scores"]) == 3 + 2 + 1
    # no silent overwrite
    assert main(["predict", str(turns_path), "--model", str(out), "-o", str(preds_path)]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert main(["predict", str(turns_path), "--model", str(out), "-o", str(preds_path), "--force",
                 "--no-evidence"]) == 0
    assert all(r["evidence"] == {} for r in read_jsonl(preds_path))
    # a reviewer's labels win in the output, with the model's scores beside them
    chat = next(t for t in tiny_turns() if t.is_interviewee and not t.labels.categories)
    answers = tmp / "answers.jsonl"
    write_jsonl(answers, [correction(chat.id, ["cat:explainability"])])
    assert main(["predict", str(turns_path), "--model", str(out), "-o", str(preds_path), "--force",
                 "--corrections", str(answers)]) == 0
    rows = {r["id"]: r for r in read_jsonl(preds_path)}
    assert rows[chat.id]["categories"] == ["explainability"] and rows[chat.id]["label_source"] == "human"
    assert "explainability" in rows[chat.id]["scores"]
    assert sum(r["label_source"] == "human" for r in rows.values()) == 1


def test_cli_train_from_a_model_continues_it(files, capsys):
    tmp, turns_path, cat = files
    train_model([turns_path], tmp / "m", config=HASHING, train_config=TrainConfig(**FAST), catalog=cat)
    rc = main(["train", str(turns_path), "-o", str(tmp / "m2"), "--from", str(tmp / "m"), "--fast"])
    assert rc == 0, capsys.readouterr().err
    card = json.loads((tmp / "m2" / "card.json").read_text())
    assert card["warm_start_from"] and card["catalog"] == "tiny@3"
    assert main(["train", str(turns_path), "-o", str(tmp / "m3"), "--from", str(tmp / "m"), "--catalog", str(cat)]) == 2
    assert "--from: expected alone" in capsys.readouterr().err


def test_cli_predict_errors(files, capsys):
    tmp, turns_path, _ = files
    assert main(["predict", str(turns_path), "--model", str(tmp / "nomodel"), "-o", str(tmp / "p.jsonl")]) == 1
    assert "expected a model directory or `default` (the packaged model), found nothing" in capsys.readouterr().err
    bad = tmp / "bad.jsonl"
    bad.write_text('{"interview": "I", "turn": 0}\n')
    assert main(["predict", str(bad), "--model", str(tmp / "nomodel"), "-o", str(tmp / "p.jsonl")]) == 1
    assert "bad.jsonl:1: expected field" in capsys.readouterr().err
    only_q = tmp / "q.jsonl"
    write_jsonl(only_q, [{"interview": "I", "turn": 0, "speaker": "interviewer", "text": "Why?"}])
    assert main(["predict", str(only_q), "--model", str(tmp / "nomodel"), "-o", str(tmp / "p.jsonl")]) == 1
    assert "expected interviewee turns, found none" in capsys.readouterr().err
    assert not (tmp / "p.jsonl").exists()


def test_cli_train_fast(files, capsys):
    tmp, turns_path, cat = files
    # the CLI trains the bundled encoder; --base-model pointing nowhere is a clear error
    rc = main(["train", str(turns_path), "-o", str(tmp / "m"), "--fast", "--catalog", str(cat),
               "--base-model", str(tmp / "no-such-model")])
    assert rc == 1
    assert "no-such-model: expected a local model directory" in capsys.readouterr().err


def test_default_model_loads_and_predicts():
    """The committed default model verifies, loads and predicts without the corpus."""
    from extractor.resources import packaged_model

    d = packaged_model()
    size = sum(p.stat().st_size for p in d.iterdir())
    assert size <= 5 * 1024 * 1024
    clf = IssueClassifier.load(d)
    assert clf.card_["fine_tuned"] and (d / "adapter.safetensors").is_file()
    preds = clf.predict(tiny_turns(1))
    assert len(preds) == 4 and set(preds[0].scores) >= set(clf.catalog_.category_ids)


@pytest.mark.corpus
def test_corpus_gold_loads(corpus):
    turns = load_training_turns([corpus / "gold" / "turns.jsonl"])
    assert len(turns) == 5088
    assert sum(1 for t in turns if t.is_interviewee and t.labels is not None) == 1969


@pytest.mark.slow
def test_fine_tuned_model_on_subset(corpus, tmp_path):
    """The real fine-tuned configuration (LoRA adapter) on four interviews, saved and reloaded."""
    turns = load_training_turns([corpus / "gold" / "turns.jsonl"])
    keep = {"Interview 3", "Interview 13", "Interview 29", "Interview 34"}
    sub = [t for t in turns if t.interview in keep]
    clf = IssueClassifier(train_config=TrainConfig(steps=40, device="cpu")).fit(sub)
    assert clf.card_["fine_tuned"]
    out = clf.save(tmp_path / "m")
    assert (out / "adapter.safetensors").stat().st_size < 2 * 1024 * 1024
    probe = [t for t in sub if t.interview == "Interview 3"][:20]
    a = clf.predict_proba(probe)["categories"]
    b = IssueClassifier.load(out).predict_proba(probe)["categories"]
    assert abs(a - b).max() < 1e-4


def test_apply_human_labels_keeps_scores_and_agreed_evidence():
    from extractor.predict import apply_human_labels
    from extractor.types import Labels, Prediction

    p = Prediction("I", 1, "t1", ("drift",), ("model_maintenance",), False, {"drift": 0.9, "noisy": 0.1},
                   {"drift": "It drifted."}, "It drifted.", spans={"drift": (0, 11)})
    q = Prediction("I", 3, "t2", (), (), False, {"drift": 0.1})
    out = apply_human_labels([p, q], {"t1": Labels(("drift", "noisy"), (), True)})
    assert out[0].categories == ("drift", "noisy") and out[0].mitigation and out[0].label_source == "human"
    assert out[0].scores == p.scores and out[0].evidence == {"drift": "It drifted."} and out[0].spans == p.spans
    assert out[1] == q and out[1].label_source == "model"


def test_resolve_model_names_the_packaged_model_from_anywhere(tmp_path, monkeypatch):
    from extractor.resources import packaged_model, resolve_model

    monkeypatch.chdir(tmp_path)
    assert resolve_model("default") == packaged_model() == resolve_model("extractor/data/model")
    with pytest.raises(ModelError, match=r"nope: expected a model directory or `default` \(the packaged model\), "
                                         r"found nothing; .*`default`"):
        resolve_model("nope")


WORDS = ["zebra", "yak", "quartz", "violin", "mango", "glacier", "tulip", "comet", "harbor", "saffron", "walrus",
         "lantern", "orchid", "canyon", "pepper", "falcon", "meadow", "cobalt", "lemur", "ember"]


def six_interviews() -> list:
    """tiny_turns(6) whose last two interviews' turns say something of their own (the toy
    hashing encoder cannot tell "interview 1" from "interview 4")."""
    from dataclasses import replace

    words = iter(WORDS)
    return [replace(t, text=f"{t.text} Held out: {next(words)} {next(words)}.")
            if t.is_interviewee and t.interview >= "Interview T4" else t for t in tiny_turns(6)]


def held_out_answers(tmp, clf, n_train: int = 4) -> tuple[list, Path]:
    """Answers on turns of interviews the model was not trained on, each unlike its prediction."""
    held = [t for t in six_interviews() if t.interview >= f"Interview T{n_train}"]
    preds = {p.id: p for p in clf.predict(held)}
    answers, fixed = [], []
    for t in [t for t in held if t.is_interviewee]:
        p = preds[t.id]
        other = next(c for c in ("explainability", "drift", "missing-data") if (c,) != p.categories)
        answers.append(correction(t.id, [f"cat:{other}"]))
        fixed.append((t.id, (other,)))
    path = tmp / "answers.jsonl"
    write_jsonl(path, answers)
    return fixed, path


@pytest.mark.parametrize("how", ["scratch", "from"])
def test_corrections_stick_after_a_retrain(files, how):
    """The 'corrections stick' bar on a tiny scale: held-out turns, corrected, retrained from
    scratch or refitted from the model, are predicted exactly as corrected."""
    tmp, _, cat = files
    all_turns = tmp / "all.jsonl"
    write_jsonl(all_turns, [t.to_dict() for t in six_interviews()])
    train_turns = tmp / "train.jsonl"
    write_jsonl(train_turns, [t.to_dict() for t in tiny_turns(4)])
    base = train_model([train_turns], tmp / "m", config=HASHING, train_config=TrainConfig(**FAST), catalog=cat)
    fixed, answers = held_out_answers(tmp, base)
    if how == "scratch":
        clf = train_model([all_turns, answers], tmp / "m2", config=HASHING, train_config=TrainConfig(**FAST),
                          catalog=cat)
    else:
        clf = train_model([all_turns, answers], tmp / "m2", init=tmp / "m")
        assert clf.card_["warm_start_from"] == base.card_["data_sha256"]
        assert clf.card_["training"]["adapter_steps"] == 0 and "evaluation" not in clf.card_
    preds = {p.id: p for p in IssueClassifier.load(tmp / "m2").predict(six_interviews())}
    assert [preds[i].categories for i, _ in fixed] == [c for _, c in fixed]


def test_cli_train_from_a_missing_model_names_default(files, capsys):
    tmp, turns_path, _ = files
    assert main(["train", str(turns_path), "-o", str(tmp / "m2"), "--from", str(tmp / "nope")]) == 1
    assert "nope: expected a model directory or `default` (the packaged model), found nothing" in capsys.readouterr().err
    assert not (tmp / "m2").exists()


def test_a_refit_on_too_few_interviews_keeps_the_model_and_teaches_its_memory(files, caplog):
    """`train --from` with answers on fewer interviews than MIN_REFIT_INTERVIEWS: nothing can be
    tuned on them, so the parent's scorer and thresholds stay and the answers join its memory."""
    import numpy as np

    from extractor.classify.trainer import MIN_REFIT_INTERVIEWS

    tmp, _, cat = files
    write_jsonl(tmp / "train.jsonl", [t.to_dict() for t in tiny_turns(4)])
    base = train_model([tmp / "train.jsonl"], tmp / "m", config=HASHING, train_config=TrainConfig(**FAST), catalog=cat)
    fixed, answers = held_out_answers(tmp, base)
    held = [t for t in six_interviews() if t.interview >= "Interview T4"]
    assert len({t.interview for t in held}) < MIN_REFIT_INTERVIEWS
    write_jsonl(tmp / "held.jsonl", [t.to_dict() for t in held])
    clf = train_model([tmp / "held.jsonl", answers], tmp / "m2", init=tmp / "m")
    assert "too few to refit" in caplog.text
    assert np.array_equal(clf.thresholds_, base.thresholds_)
    assert len(clf.memory_.E) == len(base.memory_.E) + sum(t.is_interviewee for t in held)
    preds = {p.id: p for p in IssueClassifier.load(tmp / "m2").predict(six_interviews())}
    assert [preds[i].categories for i, _ in fixed] == [c for _, c in fixed]

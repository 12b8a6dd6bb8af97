"""Tests for extractor.evaluate and the `extractor evaluate` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from extractor.catalog import Catalog, Entry, load_catalog
from extractor.cli import main
from extractor.errors import InputError
from extractor.evaluate import (
    CodeMapper,
    binary_report,
    coder_agreement,
    cohen_kappa,
    evaluate,
    format_tables,
    interview_level_report,
    multilabel_report,
)
from extractor.jsonl import read_turns, write_jsonl
from extractor.types import Labels, Prediction, Turn, with_ids

# --- a tiny catalog and gold file -------------------------------------------------

CAT = Catalog(
    version=1,
    categories=(
        Entry("drift", "Drift", "d", phases=("maint",), codes=("MM-drift", "MM-drift-fix")),
        Entry("cost", "Cost", "d", phases=("train",), codes=("MLP-costly",)),
        Entry("never", "Never", "d", codes=("X-never",)),
    ),
    phases=(
        Entry("maint", "Maintenance", "d", codes=("MM-drift", "MM-drift-fix")),
        Entry("train", "Training", "d", codes=("MLP-costly",)),
    ),
    extra={"mitigation_codes": ["MM-drift-fix"]},
)


def _turn(iv, i, speaker, text, codes=None, source="moderated"):
    labels = None
    if codes is not None and speaker == "interviewee":
        ref = codes.get("moderated") if source == "moderated" else sorted({c for v in codes.values() for c in v})
        lab = CodeMapper(CAT)(ref)
        labels = lab
    return Turn(iv, i, speaker, text, labels=labels, label_source=source if labels else None, codes=codes)


def _gold() -> list[Turn]:
    turns = [
        # Interview A: coder X and the moderator
        _turn("A", 0, "interviewer", "q?", {"X": [], "moderated": []}),
        _turn("A", 1, "interviewee", "one", {"X": ["MM-drift"], "moderated": ["MM-drift"]}),
        _turn("A", 2, "interviewee", "two", {"X": [], "moderated": ["MLP-costly"]}),
        _turn("A", 3, "interviewee", "three", {"X": ["MM-drift-fix"], "moderated": ["MM-drift-fix"]}),
        _turn("A", 4, "interviewee", "four", {"X": [], "moderated": []}),
        # Interview B: coders X and Y, no moderator (labels = union)
        _turn("B", 0, "interviewee", "five", {"X": ["MLP-costly"], "Y": ["MLP-costly"]}, "coders"),
        _turn("B", 1, "interviewee", "six", {"X": ["MM-drift"], "Y": []}, "coders"),
        # Interview C: only the moderator
        _turn("C", 0, "interviewee", "seven", {"moderated": ["MM-drift"]}),
        # Interview D: not coded
        _turn("D", 0, "interviewee", "eight"),
    ]
    return list(with_ids(turns))


def _preds(turns, fn):
    out = []
    for t in turns:
        if t.is_interviewee:
            lab = fn(t)
            out.append(Prediction(t.interview, t.turn, t.id, lab.categories, lab.phases, lab.mitigation, model="fake"))
    return out


def _perfect(turns):
    return _preds(turns, lambda t: t.labels or Labels())


# --- metrics ----------------------------------------------------------------------


def test_multilabel_report_counts_by_hand():
    gold = [["a"], ["a", "b"], [], ["b"]]
    pred = [["a"], ["b"], ["a"], ["zzz"]]  # unknown labels are ignored
    r = multilabel_report(gold, pred, ["a", "b", "c"])
    # a: tp1 fp1 fn1 -> p=r=f1=.5 ; b: tp1 fp0 fn1 -> p1 r.5 f1 2/3 ; c: undefined
    assert r["per_label"]["a"]["f1"] == pytest.approx(0.5)
    assert r["per_label"]["b"]["p"] == 1.0 and r["per_label"]["b"]["r"] == 0.5
    assert r["per_label"]["c"]["f1"] is None and r["per_label"]["c"]["kappa"] is None
    assert r["micro"]["p"] == pytest.approx(2 / 3) and r["micro"]["r"] == pytest.approx(0.5)
    assert r["micro"]["f1"] == pytest.approx(4 / 7)
    assert r["macro"]["f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert r["macro"]["labels_averaged"] == 2
    assert r["per_label"]["a"]["support"] == 2 and r["per_label"]["a"]["predicted"] == 2


def test_kappa_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a, b = rng.random(200) < 0.3, rng.random(200) < 0.4
    b[:60] = a[:60]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa(np.zeros(5, bool), np.zeros(5, bool)) is None  # chance agreement 1
    assert cohen_kappa(np.array([], bool), np.array([], bool)) is None


def test_reports_reject_length_mismatch():
    with pytest.raises(ValueError):
        multilabel_report([["a"]], [], ["a"])
    with pytest.raises(ValueError):
        binary_report([True], [True, False])
    with pytest.raises(ValueError):
        interview_level_report(["A"], [["a"]], [], ["a"])


def test_interview_level_uses_union_per_interview():
    r = interview_level_report(["A", "A", "B"], [["a"], ["b"], []], [["b"], [], ["a"]], ["a", "b"])
    assert r["n"] == 2
    assert r["per_interview"]["A"]["gold"] == ["a", "b"] and r["per_interview"]["A"]["pred"] == ["b"]
    assert r["per_interview"]["B"]["f1"] == 0.0
    # pooled: tp1 (b in A), fn1 (a in A), fp1 (a in B)
    assert r["micro"]["f1"] == pytest.approx(0.5)


# --- human agreement ------------------------------------------------------------------


def test_code_mapper_maps_categories_phases_and_mitigation():
    lab = CodeMapper(CAT)(["MM-drift-fix", "MLP-costly", "Q2.1"])
    assert lab == Labels(("drift", "cost"), ("maint", "train"), True)
    assert CodeMapper(CAT)([]) == Labels()


def test_coder_agreement_pairs_only_where_both_sources_exist():
    r = coder_agreement(_gold(), CAT)
    assert set(r["pairs"]) == {"X vs Y", "X vs moderated"}  # Y never coded with the moderator
    xm = r["pairs"]["X vs moderated"]
    assert xm["n_turns"] == 4 and xm["interviews"] == ["A"]  # interviewer turn and C excluded
    # X misses "cost" on turn 2: tp 2, fn 1 -> F1 = 0.8
    assert xm["categories"]["micro"]["f1"] == pytest.approx(0.8)
    assert xm["mitigation"]["f1"] == 1.0
    xy = r["pairs"]["X vs Y"]
    assert xy["n_turns"] == 2 and xy["categories"]["micro"]["f1"] == pytest.approx(2 / 3)
    assert r["pooled"]["coder_vs_coder"]["n_turns"] == 2
    assert r["pooled"]["coder_vs_moderated"]["n_turns"] == 4


# --- evaluate ---------------------------------------------------------------------------


def test_evaluate_perfect_predictions_and_side_by_side():
    gold = _gold()
    r = evaluate(gold, _perfect(gold), CAT)
    assert r["n_turns"] == 7 and r["n_interviews"] == 3 and r["missing_predictions"] == 0
    assert r["model"]["categories"]["micro"]["f1"] == 1.0
    assert r["model"]["phases"]["micro"]["f1"] == 1.0
    assert r["model"]["mitigation"]["f1"] == 1.0
    assert r["interview_level"]["micro"]["f1"] == 1.0
    rows = {row["comparison"]: row for row in r["side_by_side"]}
    assert rows["X vs moderated"]["categories"]["human_f1"] == pytest.approx(0.8)
    assert rows["X vs moderated"]["categories"]["model_f1"] == 1.0
    assert "coder vs coder (pooled)" in rows
    json.dumps(r)  # the whole result is JSON-serialisable
    text = format_tables(r)
    assert "drift" in text and "X vs moderated" in text and "micro" in text


def test_evaluate_moderated_only_and_interview_filter():
    gold = _gold()
    r = evaluate(gold, _perfect(gold), CAT, moderated_only=True)
    assert r["n_turns"] == 5 and r["label_sources"] == {"moderated": 5}
    assert "moderated" in r["subset"]
    r = evaluate(gold, _perfect(gold), CAT, interviews=["B"])
    assert r["interviews"] == ["B"] and r["n_turns"] == 2


def test_evaluate_wrong_predictions_score_zero():
    gold = _gold()
    r = evaluate(gold, _preds(gold, lambda t: Labels(("never",), (), False)), CAT)
    assert r["model"]["categories"]["micro"]["f1"] == 0.0
    assert r["model"]["categories"]["per_label"]["never"]["predicted"] == 7


def test_evaluate_counts_missing_predictions():
    gold = _gold()
    preds = _perfect(gold)[1:]
    r = evaluate(gold, preds, CAT)
    assert r["missing_predictions"] == 1 and r["n_turns"] == 6


def test_evaluate_errors():
    gold = _gold()
    with pytest.raises(InputError, match="predictions for the labelled turns"):
        evaluate(gold, [], CAT, gold_path="g.jsonl")
    with pytest.raises(InputError, match="g.jsonl: expected labelled interviewee turns"):
        evaluate([t for t in gold if t.interview == "D"], [], CAT, gold_path="g.jsonl")
    with pytest.raises(InputError, match="expected interviews present in the gold file, found Z"):
        evaluate(gold, _perfect(gold), CAT, interviews=["Z"])


# --- CLI --------------------------------------------------------------------------------


def _write_catalog(tmp_path):
    from extractor.catalog import save_catalog

    path = tmp_path / "catalog.yaml"
    save_catalog(CAT, path)
    return path


def test_cli_evaluate_with_predictions(tmp_path, capsys):
    gold = _gold()
    write_jsonl(tmp_path / "gold.jsonl", gold)
    write_jsonl(tmp_path / "pred.jsonl", _perfect(gold))
    cat = _write_catalog(tmp_path)
    out = tmp_path / "ev.json"
    argv = ["evaluate", str(tmp_path / "gold.jsonl"), "--predictions", str(tmp_path / "pred.jsonl"),
            "--catalog", str(cat), "--json", str(out)]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "Turn level: categories micro-F1 1.000" in stdout
    doc = json.loads(out.read_text())
    assert doc["model"]["categories"]["micro"]["f1"] == 1.0 and doc["source"] == {"predictions": str(tmp_path / "pred.jsonl")}
    # an existing --json is not overwritten without --force
    out.write_text("keep")
    assert main(argv) == 1
    assert "pass --force" in capsys.readouterr().err and out.read_text() == "keep"
    assert main([*argv, "--force"]) == 0


def test_cli_evaluate_errors(tmp_path, capsys):
    gold = _gold()
    write_jsonl(tmp_path / "gold.jsonl", gold)
    cat = _write_catalog(tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"interview": "A", "turn": 1}\n')
    assert main(["evaluate", str(tmp_path / "gold.jsonl"), "--predictions", str(tmp_path / "bad.jsonl"),
                 "--catalog", str(cat)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "bad.jsonl:1" in err and len(err.splitlines()) == 1
    # predictions of another file: nothing matches
    other = [Prediction("A", 1, "0" * 16, (), (), False)]
    write_jsonl(tmp_path / "other.jsonl", other)
    assert main(["evaluate", str(tmp_path / "gold.jsonl"), "--predictions", str(tmp_path / "other.jsonl"),
                 "--catalog", str(cat)]) == 1
    assert "gold.jsonl: expected predictions for the labelled turns" in capsys.readouterr().err
    # --model and --predictions are exclusive (neither: the packaged model)
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(tmp_path / "gold.jsonl"), "--model", "m", "--predictions", "p.jsonl"])
    assert e.value.code == 2


# --- the real corpus ------------------------------------------------------------------


@pytest.mark.corpus
def test_coder_agreement_on_the_corpus_matches_the_readme(corpus):
    """The corpus README: coder-vs-coder micro-F1 about 0.4, coder vs moderated about 0.67."""
    turns = read_turns(corpus / "gold" / "turns.jsonl")
    catalog = load_catalog()
    mapper = CodeMapper(catalog)
    # the gold labels are exactly the catalog mapping of the codes (moderated, else coders' union)
    for t in turns:
        if t.is_interviewee and t.labels is not None:
            srcs = ["moderated"] if t.label_source == "moderated" else list(t.codes)
            lab = [mapper(t.codes[s]) for s in srcs]
            assert set(t.labels.categories) == {c for x in lab for c in x.categories}, t.id
            assert set(t.labels.phases) == {p for x in lab for p in x.phases}, t.id
    r = coder_agreement(turns, catalog)["pooled"]
    assert 0.35 <= r["coder_vs_coder"]["categories"]["micro"]["f1"] <= 0.5
    assert 0.6 <= r["coder_vs_moderated"]["categories"]["micro"]["f1"] <= 0.75


# --- cross-validation -----------------------------------------------------------------


def _many_interviews(n_interviews=6, per=6):
    words = {"drift": "the data distribution changed and the model drifted so we retrain",
             "cost": "the cloud bill for gpu training was far too expensive",
             None: "we had lunch and talked about the weather in the office"}
    turns = []
    for iv in range(n_interviews):
        for k in range(per):
            key = ["drift", "cost", None][k % 3]
            turns.append(Turn(f"I {iv}", 2 * k, "interviewer", "what issues did you have?"))
            lab = Labels((key,) if key else (), (), False)
            turns.append(Turn(f"I {iv}", 2 * k + 1, "interviewee", f"{words[key]} case {k} {iv}", labels=lab,
                              label_source="moderated"))
    turns.append(Turn("uncoded", 0, "interviewee", "no labels here"))
    return list(with_ids(turns))


def test_grouped_folds_are_disjoint_balanced_and_deterministic():
    from extractor.evaluate import grouped_folds

    turns = _many_interviews(7)
    folds = grouped_folds(turns, 3, seed=1)
    names = [n for f in folds for n in f]
    assert sorted(names) == sorted({t.interview for t in turns if t.labels is not None})  # uncoded left out
    assert len(names) == len(set(names)) and sorted(map(len, folds)) == [2, 2, 3]
    assert grouped_folds(turns, 3, seed=1) == folds
    with pytest.raises(InputError, match="at least 9 labelled interviews"):
        grouped_folds(turns, 9)
    with pytest.raises(ValueError):
        grouped_folds(turns, 1)


def test_cross_validate_never_trains_on_held_out_interviews(monkeypatch):
    import extractor.classify as classify
    from extractor.evaluate import cross_validate

    seen = []

    class Fake:
        def __init__(self, catalog=None, config=None, train_config=None):
            self.config = config

        def _get_encoder(self):
            return type("E", (), {"_cache": {}})()

        def fit(self, turns, progress=False):
            self.train = {t.interview for t in turns}
            return self

        def predict(self, turns, progress=False, evidence=True):
            ivs = {t.interview for t in turns}
            seen.append((self.train, ivs))
            return [Prediction(t.interview, t.turn, t.id, ("drift",), (), False) for t in turns if t.is_interviewee]

    monkeypatch.setattr(classify, "IssueClassifier", Fake)
    turns = _many_interviews(6)
    preds, folds = cross_validate(turns, folds=3, catalog=CAT, config=classify.TrainConfig())
    assert len(seen) == 3
    for train, test in seen:
        assert not train & test and "uncoded" not in train | test
    assert sorted(p.id for p in preds) == sorted(t.id for t in turns if t.labels is not None)


def test_cross_validate_end_to_end_with_hashing_encoder():
    from dataclasses import replace

    from extractor.classify import ModelConfig, TrainConfig
    from extractor.evaluate import cross_validate

    turns = _many_interviews(4, per=6)
    # the default classifier matches turns against the catalog text: give it some
    cat = replace(CAT, categories=(replace(CAT.categories[0], examples=("the data distribution changed",)),
                                   replace(CAT.categories[1], examples=("the gpu training bill was expensive",)),
                                   CAT.categories[2]))
    cfg = TrainConfig(threshold_folds=2, head_epochs=30, min_threshold_support=2, fine_tune=False)
    preds, folds = cross_validate(turns, folds=2, catalog=cat, config=cfg, model_config=ModelConfig(base_model="hashing"))
    r = evaluate(turns, preds, cat)
    assert r["n_turns"] == 24 and r["missing_predictions"] == 0
    assert r["model"]["categories"]["micro"]["f1"] >= 0.8  # the two topics use disjoint words


def test_cli_evaluate_usage_errors(tmp_path, capsys):
    gold = tmp_path / "gold.jsonl"
    write_jsonl(gold, _gold())
    assert main(["evaluate", str(gold), "--cv", "1"]) == 2
    assert "error: --cv: expected at least 2 folds, found 1" in capsys.readouterr().err
    assert main(["evaluate", str(gold), "--predictions", str(gold), "--fast"]) == 2
    assert "expected together with --cv K" in capsys.readouterr().err
    # an unknown interview names the gold file
    write_jsonl(tmp_path / "pred.jsonl", _perfect(_gold()))
    cat = _write_catalog(tmp_path)
    assert main(["evaluate", str(gold), "--predictions", str(tmp_path / "pred.jsonl"), "--catalog", str(cat),
                 "--interviews", "A, Nope"]) == 1
    assert capsys.readouterr().err == f"error: {gold}: expected interviews present in the gold file, found Nope\n"


def test_cli_evaluate_with_a_saved_model_warns_on_training_data(tmp_path, capsys):
    from extractor.classify import IssueClassifier, ModelConfig, TrainConfig

    turns = _many_interviews(3, per=6)
    cfg = TrainConfig(threshold_folds=2, head_epochs=30, min_threshold_support=2, fine_tune=False)
    IssueClassifier(catalog=CAT, config=ModelConfig(base_model="hashing"), train_config=cfg).fit(turns).save(
        tmp_path / "model")
    write_jsonl(tmp_path / "gold.jsonl", turns)
    out = tmp_path / "ev.json"
    assert main(["evaluate", str(tmp_path / "gold.jsonl"), "--model", str(tmp_path / "model"), "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "was trained on" in captured.err and "training-set figures" in captured.err
    doc = json.loads(out.read_text())
    assert doc["n_turns"] == 18 and doc["source"] == {"model": str(tmp_path / "model")}
    assert doc["catalog"] == CAT.tag


@pytest.mark.parametrize("field, bad", [("categories", "no_such_category"), ("phases", "no_such_phase")])
def test_cli_evaluate_refuses_predictions_with_unknown_ids(tmp_path, capsys, field, bad):
    import dataclasses

    gold = _gold()
    write_jsonl(tmp_path / "gold.jsonl", gold)
    cat = _write_catalog(tmp_path)
    preds = _perfect(gold)
    preds[1] = dataclasses.replace(preds[1], **{field: (*getattr(preds[1], field), bad)})
    write_jsonl(tmp_path / "pred.jsonl", preds)
    assert main(["evaluate", str(tmp_path / "gold.jsonl"), "--predictions", str(tmp_path / "pred.jsonl"),
                 "--catalog", str(cat)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {tmp_path / 'pred.jsonl'}:2: expected category")
    assert f"found unknown {bad!r} in prediction" in err
    with pytest.raises(InputError, match=f"predictions: expected category and phase ids .*unknown '{bad}'"):
        evaluate(gold, preds, CAT)


@pytest.mark.parametrize("line, fragment", [
    ('{"interview": "\\ud800", "turn": 1, "id": "x"}', "lone surrogates"),
    ('{"interview": "A", "turn": ' + "1" * 5000 + ', "id": "x"}', "at most 30 digits"),
    ('{"interview": "A", "turn": 1, "id": "x", "scores": {"c1": NaN}}', "NaN"),
    ('{"a": ' + "[" * 100000 + "]" * 100000 + "}", "nested at most 200 levels"),
])
def test_cli_evaluate_hostile_predictions_are_one_line(tmp_path, line, fragment):
    from hostile import assert_one_line_error, run_cli

    gold = _gold()
    write_jsonl(tmp_path / "gold.jsonl", gold)
    cat = _write_catalog(tmp_path)
    (tmp_path / "p.jsonl").write_text(line + "\n", encoding="utf-8")
    run = run_cli(["evaluate", tmp_path / "gold.jsonl", "--predictions", tmp_path / "p.jsonl", "--catalog", cat],
                  tmp_path)
    assert_one_line_error(run, "p.jsonl:1: expected", fragment)


def test_cli_evaluate_catalog_with_odd_yaml_keys_is_one_line(tmp_path):
    from hostile import assert_one_line_error, run_cli

    gold = _gold()
    write_jsonl(tmp_path / "gold.jsonl", gold)
    write_jsonl(tmp_path / "p.jsonl", _perfect(gold))
    cat = _write_catalog(tmp_path)
    cat.write_text(cat.read_text(encoding="utf-8") + "1: one\n~: nothing\n", encoding="utf-8")
    run = run_cli(["evaluate", tmp_path / "gold.jsonl", "--predictions", tmp_path / "p.jsonl", "--catalog", cat],
                  tmp_path)
    assert_one_line_error(run, "expected text mapping keys, found a number key 1")

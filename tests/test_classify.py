"""IssueClassifier: fit/predict on tiny inline data, save/load round trip, tamper checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from extractor.catalog import load_catalog
from extractor.classify import ClassifierConfig, IssueClassifier, split_sentences, tune_thresholds
from extractor.errors import ModelError
from extractor.types import Labels, Turn, with_ids

CATALOG_YAML = """\
name: tiny
version: 3
phases:
- id: data_collection
  name: Data collection
  definition: Gathering raw data from sources.
- id: model_maintenance
  name: Model maintenance
  definition: Keeping a deployed model working over time.
categories:
- id: drift
  name: Drift
  definition: The input data distribution changes over time and accuracy degrades.
  phases: [model_maintenance]
- id: missing-data
  name: Missing data
  definition: Values or fields are absent from records.
  phases: [data_collection]
- id: explainability
  name: Explainability
  definition: Users cannot understand why the model predicts something.
"""

DRIFT = ["The distribution shifted last month and accuracy dropped.", "Our data drifts every season, so the model degrades.",
         "After deployment the inputs changed and predictions got worse over time."]
MISSING = ["Many records have empty fields and missing values.", "Half of the sensor values were missing.",
           "The form often leaves the age field blank, so values are absent."]
NOTHING = ["I work at a bank as a data scientist.", "We use Python mostly.", "That is a good question, let me think.",
           "Our team has five people.", "Yes.", "I started three years ago."]


def tiny_turns(n_interviews: int = 4) -> list[Turn]:
    turns = []
    for k in range(n_interviews):
        name = f"Interview T{k}"
        rows = [(DRIFT[k % 3], ("drift",), ("model_maintenance",), k % 2 == 0),
                (MISSING[k % 3], ("missing-data",), ("data_collection",), False),
                (NOTHING[k % 6], (), (), False), (NOTHING[(k + 3) % 6], (), (), False)]
        i = 0
        for text, cats, phases, mit in rows:
            q = f"Question {i} of interview {k}: tell me about your work?"
            turns.append(Turn(name, i, "interviewer", q))
            turns.append(Turn(name, i + 1, "interviewee", f"{text} Also, this is interview {k}.", question=q,
                              labels=Labels(cats, phases, mit), label_source="moderated",
                              codes={"moderated": ["x"] if cats else []}))
            i += 2
    return list(with_ids(turns))


@pytest.fixture
def catalog(tmp_path):
    p = tmp_path / "catalog.yaml"
    p.write_text(CATALOG_YAML)
    return load_catalog(p)


FAST = dict(base_model="hashing", head_epochs=150, threshold_folds=2, min_threshold_support=2)


@pytest.fixture
def fitted(catalog):
    return IssueClassifier(catalog, ClassifierConfig(**FAST)).fit(tiny_turns())


def test_config_validation():
    with pytest.raises(ModelError, match="seed"):
        ClassifierConfig(seed="1")
    with pytest.raises(ModelError, match="threshold_folds"):
        ClassifierConfig(threshold_folds=1)
    with pytest.raises(ModelError, match="l2"):
        ClassifierConfig(l2=-1)
    with pytest.raises(ModelError, match="category_scorer: expected \"catalog\" or \"heads\", found 'knn'"):
        ClassifierConfig(category_scorer="knn")
    with pytest.raises(ModelError, match="category_scorer: expected \"heads\" when use_catalog is false"):
        ClassifierConfig(use_catalog=False)
    with pytest.raises(ModelError, match="pair_c_grid: expected a non-empty list of numbers > 0, found"):
        ClassifierConfig(pair_c_grid=(0.1, 0))


def test_heads_scorer_still_trains(catalog):
    clf = IssueClassifier(catalog, ClassifierConfig(**FAST, category_scorer="heads")).fit(tiny_turns())
    assert clf.protos_ is None and not hasattr(clf, "scorer_")
    assert clf.predict_proba(tiny_turns(1))["categories"].shape == (4, 3)


def test_fit_predict_proba_shapes(fitted, catalog):
    turns = tiny_turns(2)
    pr = fitted.predict_proba(turns)
    n = sum(t.is_interviewee for t in turns)
    assert pr["categories"].shape == (n, 3)
    assert pr["phases"].shape == (n, 2)
    assert pr["mitigation"].shape == (n,)
    assert np.all((pr["categories"] >= 0) & (pr["categories"] <= 1))
    assert fitted.catalog_.tag == "tiny@3"
    assert set(fitted.card_) >= {"base_model", "base_model_sha256", "catalog", "data_sha256", "seed",
                                 "thresholds", "metrics"}


def test_predict_fields_and_learning(fitted):
    turns = tiny_turns(2)
    preds = fitted.predict(turns)
    assert [p.turn for p in preds] == [t.turn for t in turns if t.is_interviewee]
    p0 = preds[0]
    assert set(p0.scores) == {"drift", "missing-data", "explainability", "data_collection",
                              "model_maintenance", "mitigation"}
    assert p0.id and p0.interview == "Interview T0" and p0.model.startswith("qi-classifier:hashing")
    for p in preds:
        assert set(p.evidence) == set(p.categories)
        for c, sent in p.evidence.items():
            assert sent in p.text
    # the drift turns score higher on drift than the small-talk turns
    drift = [p.scores["drift"] for p in preds if p.turn == 1]
    chat = [p.scores["drift"] for p in preds if p.turn in (5, 7)]
    assert min(drift) > max(chat)


def test_predict_without_evidence_and_interviewer_only(fitted):
    turns = tiny_turns(1)
    assert all(p.evidence == {} for p in fitted.predict(turns, evidence=False))
    assert fitted.predict([t for t in turns if not t.is_interviewee]) == []


def test_labels_outside_catalog_are_ignored(catalog):
    from dataclasses import replace

    turns = [replace(t, labels=Labels(t.labels.categories + ("not-in-catalog",), t.labels.phases))
             if t.labels else t for t in tiny_turns()]
    clf = IssueClassifier(catalog, ClassifierConfig(**FAST)).fit(turns)
    assert "not-in-catalog" not in clf.predict(turns[:2])[0].scores


def test_fit_without_labels_errors(catalog):
    turns = [Turn("I", 0, "interviewee", "hello")]
    with pytest.raises(ModelError, match="no labelled interviewee turns"):
        IssueClassifier(catalog, ClassifierConfig(**FAST)).fit(turns)


def test_unfitted_errors(catalog):
    with pytest.raises(ModelError, match="not fitted"):
        IssueClassifier(catalog).predict(tiny_turns(1))


def test_deterministic(catalog):
    a = IssueClassifier(catalog, ClassifierConfig(**FAST)).fit(tiny_turns())
    b = IssueClassifier(catalog, ClassifierConfig(**FAST)).fit(tiny_turns())
    np.testing.assert_array_equal(a.predict_proba(tiny_turns(1))["categories"],
                                  b.predict_proba(tiny_turns(1))["categories"])


def test_save_load_round_trip(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    names = {p.name for p in d.iterdir()}
    assert names == {"heads.safetensors", "config.json", "card.json", "catalog.yaml", "manifest.json"}
    assert not any(n.endswith((".pkl", ".bin", ".pt")) for n in names)
    loaded = IssueClassifier.load(d)
    turns = tiny_turns(2)
    np.testing.assert_allclose(loaded.predict_proba(turns)["categories"], fitted.predict_proba(turns)["categories"],
                               rtol=1e-5, atol=1e-6)
    assert [p.to_dict() for p in loaded.predict(turns)] == [p.to_dict() for p in fitted.predict(turns)]
    # the catalog snapshot travels with the model
    assert loaded.catalog_.tag == "tiny@3"
    # saving again over a model directory replaces it
    fitted.save(d)
    IssueClassifier.load(d)


def test_save_refuses_foreign_directory(fitted, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="expected an empty or model directory"):
        fitted.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_tampered_file_is_refused(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    raw = bytearray((d / "heads.safetensors").read_bytes())
    raw[-5] ^= 0xFF
    (d / "heads.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelError, match=r"heads\.safetensors: expected SHA-256 .*modified"):
        IssueClassifier.load(d)


def test_truncated_file_is_refused(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    raw = (d / "heads.safetensors").read_bytes()
    (d / "heads.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelError, match="truncated"):
        IssueClassifier.load(d)


def test_tampered_json_and_manifest(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    card = json.loads((d / "card.json").read_text())
    card["seed"] = 7
    (d / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="card.json"):
        IssueClassifier.load(d)
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="damaged"):
        IssueClassifier.load(d)
    (d / "manifest.json").unlink()
    with pytest.raises(ModelError, match="manifest.json in the model directory"):
        IssueClassifier.load(d)


def test_model_without_catalog_scorer_tensors_is_refused(fitted, tmp_path):
    from safetensors.numpy import load_file, save_file

    from extractor.embed import file_sha256

    d = fitted.save(tmp_path / "m")
    t = load_file(str(d / "heads.safetensors"))
    del t["pair_coef"]
    save_file(t, str(d / "heads.safetensors"))
    manifest = json.loads((d / "manifest.json").read_text())  # a consistent manifest: only the content is wrong
    manifest["files"]["heads.safetensors"] = {"sha256": file_sha256(d / "heads.safetensors"),
                                              "bytes": (d / "heads.safetensors").stat().st_size}
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="heads.safetensors: expected the catalog scorer's tensor 'pair_coef'"):
        IssueClassifier.load(d)


def test_missing_model_dir(tmp_path):
    with pytest.raises(ModelError, match="expected a model directory, found nothing"):
        IssueClassifier.load(tmp_path / "nope")


def test_missing_file_listed_in_manifest(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    (d / "catalog.yaml").unlink()
    with pytest.raises(ModelError, match="catalog.yaml: expected a model file listed in the manifest"):
        IssueClassifier.load(d)


def test_split_sentences():
    assert split_sentences("One thing. Another thing! A third?") == ["One thing.", "Another thing!", "A third?"]
    assert split_sentences("") == [""]


def test_tune_thresholds_shared_fallback():
    Y = np.array([[1, 0], [0, 0], [1, 1], [0, 0]] * 5, dtype=float)
    P = np.array([[0.9, 0.2], [0.1, 0.1], [0.8, 0.3], [0.2, 0.05]] * 5)
    th = tune_thresholds(Y, P, min_support=100)  # nobody has 100 positives: all share one threshold
    assert th[0] == th[1]
    assert 0.2 < th[0] <= 0.3


def test_real_encoder_small_model(catalog, tmp_path):
    """A small real model: bundled MiniLM, frozen, on the tiny data; saved and reloaded."""
    cfg = ClassifierConfig(head_epochs=150, threshold_folds=2, min_threshold_support=2, device="cpu")
    clf = IssueClassifier(catalog, cfg).fit(tiny_turns())
    assert clf.card_["base_model"] == "all-MiniLM-L6-v2" and len(clf.card_["base_model_sha256"]) == 64
    clf.save(tmp_path / "m")
    preds = IssueClassifier.load(tmp_path / "m").predict(tiny_turns(1))
    drift, chat = preds[0], preds[2]
    assert drift.scores["drift"] > chat.scores["drift"]
    assert drift.scores["drift"] > drift.scores["missing-data"]

"""extractor.classify.model: IssueClassifier fit/predict on tiny inline data, save/load round trip,
tamper checks, human labels, warm start and the label memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from extractor.catalog import load_catalog
from extractor.classify import IssueClassifier, ModelConfig, TrainConfig
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


HASHING = ModelConfig(base_model="hashing")
FAST = dict(head_epochs=150, threshold_folds=2, min_threshold_support=2, fine_tune=False)


def make(catalog, **kw) -> IssueClassifier:
    return IssueClassifier(catalog, HASHING, TrainConfig(**{**FAST, **kw}))


@pytest.fixture
def fitted(catalog):
    return make(catalog).fit(tiny_turns())


def test_fit_predict_proba_shapes(fitted, catalog):
    turns = tiny_turns(2)
    pr = fitted.predict_proba(turns)
    n = sum(t.is_interviewee for t in turns)
    assert pr["categories"].shape == (n, 3)
    assert pr["phases"].shape == (n, 2)
    assert pr["mitigation"].shape == (n,)
    assert np.all((pr["categories"] >= 0) & (pr["categories"] <= 1))
    assert fitted.catalog_.tag == "tiny@3"
    assert set(fitted.card_) >= {"base_model", "base_model_sha256", "catalog", "data_sha256", "train_config",
                                 "metrics"}


def test_predict_fields_and_learning(fitted):
    turns = tiny_turns(2)
    preds = fitted.predict(turns)
    assert [p.turn for p in preds] == [t.turn for t in turns if t.is_interviewee]
    p0 = preds[0]
    assert set(p0.scores) == {"drift", "missing-data", "explainability", "data_collection",
                              "model_maintenance", "mitigation"}
    assert p0.id and p0.interview == "Interview T0" and p0.model.startswith("qi-classifier:hashing")
    for p in preds:
        assert set(p.evidence) == set(p.categories) == set(p.spans)
        for c, passage in p.evidence.items():
            a, z = p.spans[c]
            assert p.text[a:z] == passage
        assert p.label_source == "model"
    # the drift turns score higher on drift than the small-talk turns
    drift = [p.scores["drift"] for p in preds if p.turn == 1]
    chat = [p.scores["drift"] for p in preds if p.turn in (5, 7)]
    assert min(drift) > max(chat)


def test_predict_without_evidence_and_interviewer_only(fitted):
    turns = tiny_turns(1)
    assert all(p.evidence == {} for p in fitted.predict(turns, evidence=False))
    assert fitted.predict([t for t in turns if not t.is_interviewee]) == []


def test_labels_outside_catalog_are_refused(catalog):
    from dataclasses import replace

    turns = [replace(t, labels=Labels(t.labels.categories + ("not-in-catalog",), t.labels.phases))
             if t.labels else t for t in tiny_turns()]
    with pytest.raises(ModelError, match="expected a category id of catalog tiny@3, found 'not-in-catalog'"):
        make(catalog).fit(turns)


def test_fit_without_labels_errors(catalog):
    turns = [Turn("I", 0, "interviewee", "hello")]
    with pytest.raises(ModelError, match="no labelled interviewee turns"):
        make(catalog).fit(turns)


def test_unfitted_errors(catalog):
    with pytest.raises(ModelError, match="not fitted"):
        IssueClassifier(catalog).predict(tiny_turns(1))


def test_deterministic(catalog):
    a = make(catalog).fit(tiny_turns())
    b = make(catalog).fit(tiny_turns())
    np.testing.assert_array_equal(a.predict_proba(tiny_turns(1))["categories"],
                                  b.predict_proba(tiny_turns(1))["categories"])


def test_save_load_round_trip(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    names = {p.name for p in d.iterdir()}
    assert names == {"heads.safetensors", "scorer.safetensors", "memory.safetensors", "catalog.safetensors",
                     "thresholds.json", "config.json", "card.json", "catalog.yaml", "manifest.json"}
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
    with pytest.raises(ModelError, match="expected a new, empty or model directory"):
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


def _rewrite(d: Path, name: str, data: bytes) -> None:
    """Replace a model file and keep the manifest consistent: only the content is wrong."""
    from extractor.embed import file_sha256

    (d / name).write_bytes(data)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": file_sha256(d / name), "bytes": len(data)}
    (d / "manifest.json").write_text(json.dumps(manifest))


def test_model_without_a_tensor_is_refused(fitted, tmp_path):
    from safetensors.numpy import load_file, save

    d = fitted.save(tmp_path / "m")
    t = load_file(str(d / "scorer.safetensors"))
    del t["pair_coef"]
    _rewrite(d, "scorer.safetensors", save(t))
    with pytest.raises(ModelError, match="scorer.safetensors: expected tensor 'pair_coef', found none"):
        IssueClassifier.load(d)


def test_manifest_entry_of_the_wrong_type_is_refused(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["files"]["card.json"] = "abc"
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r'expected \{"sha256": str, "bytes": int\} for card.json'):
        IssueClassifier.load(d)
    manifest["files"] = []
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match='expected an object "files"'):
        IssueClassifier.load(d)


def test_old_or_foreign_format_is_refused(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    doc = json.loads((d / "config.json").read_text())
    _rewrite(d, "config.json", json.dumps({**doc, "format": "qi-classifier@1"}).encode())
    with pytest.raises(ModelError, match="expected format qi-classifier@2, found 'qi-classifier@1'; retrain"):
        IssueClassifier.load(d)


def test_missing_threshold_is_refused(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    th = json.loads((d / "thresholds.json").read_text())
    del th["categories"]["drift"]
    _rewrite(d, "thresholds.json", json.dumps(th).encode())
    with pytest.raises(ModelError, match="thresholds.json: expected a threshold for every label"):
        IssueClassifier.load(d)


def test_missing_model_dir(tmp_path):
    with pytest.raises(ModelError, match="expected a model directory, found nothing"):
        IssueClassifier.load(tmp_path / "nope")


def test_missing_file_listed_in_manifest(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    (d / "catalog.yaml").unlink()
    with pytest.raises(ModelError, match="catalog.yaml: expected a model file listed in the manifest"):
        IssueClassifier.load(d)


def test_model_fits_its_training_turns_through_the_memory(catalog):
    """A label the shared scorer could never learn (explainability on small talk) is predicted
    for that very turn after training, and not for other turns."""
    from dataclasses import replace

    turns = tiny_turns()
    target = next(t for t in turns if t.is_interviewee and t.text.startswith("Our team has five people"))
    turns = [replace(t, labels=Labels(("explainability",), (), False), label_source="review") if t.id == target.id
             else t for t in turns]
    clf = make(catalog).fit(turns)
    preds = {p.id: p for p in clf.predict(turns)}
    assert preds[target.id].categories == ("explainability",)
    gold = {t.id: set(t.labels.categories) for t in turns if t.labels is not None}
    assert sum(set(preds[i].categories) == g for i, g in gold.items()) / len(gold) >= 0.9


def test_warm_start_continues_from_a_saved_model(fitted, tmp_path, catalog):
    d = fitted.save(tmp_path / "m")
    warm = IssueClassifier.load(d)
    warm.fit(tiny_turns(3))
    assert warm.card_["warm_start_from"] == fitted.card_["data_sha256"]
    assert warm.catalog_.tag == "tiny@3"


def test_real_encoder_small_model(catalog, tmp_path):
    """A small real model: bundled MiniLM with a LoRA adapter trained 3 steps; saved and reloaded."""
    cfg = TrainConfig(**{**FAST, "fine_tune": True, "steps": 3, "batch_size": 4}, device="cpu")
    clf = IssueClassifier(catalog, ModelConfig(), cfg).fit(tiny_turns())
    assert clf.card_["base_model"] == "all-MiniLM-L6-v2" and len(clf.card_["base_model_sha256"]) == 64
    assert clf.card_["fine_tuned"] and clf.card_["training"]["adapter_steps"] == 3
    clf.save(tmp_path / "m")
    assert (tmp_path / "m" / "adapter.safetensors").is_file()
    loaded = IssueClassifier.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(tiny_turns(1))["categories"],
                               clf.predict_proba(tiny_turns(1))["categories"], atol=1e-4)
    preds = loaded.predict(tiny_turns(1))
    drift, chat = preds[0], preds[2]
    assert drift.scores["drift"] > chat.scores["drift"]
    assert drift.scores["drift"] > drift.scores["missing-data"]


def test_fine_tune_is_reproducible_from_the_seed(catalog):
    """A fixed number of adapter steps and a seeded sampler: two trainings, one model."""
    cfg = TrainConfig(**{**FAST, "fine_tune": True, "steps": 2, "batch_size": 4}, device="cpu")
    a = IssueClassifier(catalog, ModelConfig(), cfg).fit(tiny_turns())
    b = IssueClassifier(catalog, ModelConfig(), cfg).fit(tiny_turns())
    np.testing.assert_array_equal(a.thresholds_, b.thresholds_)
    np.testing.assert_allclose(a.predict_proba(tiny_turns(1))["categories"],
                               b.predict_proba(tiny_turns(1))["categories"], atol=1e-6)


def test_a_model_can_be_saved_where_the_packaged_model_lives(fitted, tmp_path, monkeypatch):
    """`make train` refreshes extractor/data/model in a checkout: the model's catalog snapshot
    is not a user catalog, so the packaged-catalog guard must not stop it."""
    import extractor.resources as resources

    monkeypatch.setattr(resources, "package_data_dir", lambda: tmp_path)
    d = fitted.save(tmp_path / "model")
    assert IssueClassifier.load(d).catalog_.tag == "tiny@3"


def test_fit_never_changes_the_callers_encoder(catalog):
    """The fine-tune trains a copy: the encoder passed in keeps no adapter and its vectors."""
    from extractor.classify.encoder import TurnEncoder

    enc = TurnEncoder(device="cpu")
    before = enc.fingerprint
    cfg = TrainConfig(**{**FAST, "fine_tune": True, "steps": 2, "batch_size": 4}, device="cpu")
    clf = IssueClassifier(catalog, ModelConfig(), cfg, embedder=enc).fit(tiny_turns())
    assert clf.card_["training"]["adapter_steps"] == 2 and clf.embedder is not enc
    assert enc.adapter_config is None and enc.fingerprint == before
    assert clf.embedder.adapter_config is not None and clf.embedder.fingerprint != before

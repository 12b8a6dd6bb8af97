"""extractor.classify.extend: catalog entries the model was never trained on are predicted from
their text with no retrain (Prediction.untrained), through predict and `extractor predict --catalog`."""

from __future__ import annotations

import pytest

from extractor.catalog import load_catalog
from extractor.classify.extend import extend_catalog
from extractor.errors import ModelError
from extractor.types import Labels
from tests.test_classify import CATALOG_YAML, catalog, make, tiny_turns  # noqa: F401 (catalog: a fixture)
from tests.test_classify_teach import GPU, ie, session_turns

NEW_ENTRY = """\
- id: gpu-memory
  name: GPU memory exhaustion
  definition: Training runs out of GPU memory and crashes.
  keywords: [out of memory, GPU, OOM]
  examples: ["The GPUs ran out of memory during training."]
"""


@pytest.fixture
def model(catalog):  # noqa: F811
    return make(catalog).fit(tiny_turns())


@pytest.fixture
def extended_catalog(tmp_path):
    p = tmp_path / "catalog2.yaml"
    p.write_text(CATALOG_YAML + NEW_ENTRY)
    return load_catalog(p)


def test_same_catalog_is_the_same_model(model, catalog):  # noqa: F811
    assert extend_catalog(model, catalog) is model


def test_new_entry_is_scored_from_its_text_and_listed_untrained(model, extended_catalog):
    turns = session_turns()
    ext = extend_catalog(model, extended_catalog)
    assert ext.untrained_ == ("gpu-memory",) and model.untrained_ == ()
    old, new = model.predict(turns), ext.predict(turns)
    assert all("gpu-memory" in p.scores for p in new)
    gpu = [p.scores["gpu-memory"] for p in new if p.text in GPU]
    other = [p.scores["gpu-memory"] for p in new if p.text not in GPU]
    assert min(gpu) > max(other)  # scored from its text: the GPU turns match it best
    for p in new:
        assert set(p.untrained) == set(p.categories) & {"gpu-memory"}
    # the trained entries keep their scores up to the shift of standardising over one more entry
    assert max(abs(a.scores["drift"] - b.scores["drift"]) for a, b in zip(old, new)) < 0.2


def test_an_answer_with_the_new_entry_makes_it_labelled(model, extended_catalog):
    turns = session_turns()
    ext = extend_catalog(model, extended_catalog)
    g = [t for t in ie(turns) if t.text in GPU]
    base = {p.id: p.scores["gpu-memory"] for p in ext.predict(turns)}
    taught = {p.id: p for p in ext.predict(turns, taught={g[0].id: Labels(("gpu-memory",))})}
    assert taught[g[0].id].categories == ("gpu-memory",) and taught[g[0].id].untrained == ("gpu-memory",)
    assert taught[g[2].id].scores["gpu-memory"] > base[g[2].id]


def test_a_catalog_without_a_trained_entry_or_with_other_phases_is_refused(model, tmp_path):
    p = tmp_path / "less.yaml"
    p.write_text(CATALOG_YAML.replace("- id: explainability\n  name: Explainability\n"
                                      "  definition: Users cannot understand why the model predicts something.\n",
                                      "") + NEW_ENTRY)
    with pytest.raises(ModelError, match="expected every category the model was trained on, found "
                                         "'explainability' missing"):
        extend_catalog(model, load_catalog(p))
    q = tmp_path / "phases.yaml"
    q.write_text(CATALOG_YAML.replace("- id: model_maintenance\n  name: Model maintenance\n"
                                      "  definition: Keeping a deployed model working over time.\n", "")
                 .replace("phases: [model_maintenance]", "phases: [data_collection]") + NEW_ENTRY)
    with pytest.raises(ModelError, match="expected the model's phases"):
        extend_catalog(model, load_catalog(q))


def test_predict_cli_with_an_updated_catalog(model, extended_catalog, tmp_path):
    import subprocess
    import sys

    from extractor.catalog import save_catalog
    from extractor.jsonl import read_predictions, write_jsonl
    from tests.conftest import REPO

    write_jsonl(tmp_path / "turns.jsonl", session_turns())
    model.save(tmp_path / "m")
    save_catalog(extended_catalog, tmp_path / "new.yaml")
    r = subprocess.run([sys.executable, "-m", "extractor", "predict", str(tmp_path / "turns.jsonl"), "--model",
                        str(tmp_path / "m"), "--catalog", str(tmp_path / "new.yaml"), "-o", str(tmp_path / "p.jsonl")],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    preds = read_predictions(tmp_path / "p.jsonl")
    assert all("gpu-memory" in p.scores for p in preds)
    assert all(set(p.untrained) <= {"gpu-memory"} for p in preds)


def test_a_proposal_accepted_in_review_is_predicted_without_retraining(model, tmp_path):
    """Discovery's loop end to end: a reviewer accepts a proposal (decision saved in the
    proposals file, as the web view saves it), `discover-review` writes the catalog entry, and
    the next prediction with that catalog scores it from its text, marked untrained."""
    import json

    from extractor.proposals import Proposal, Quote, apply_decisions

    cat_path = tmp_path / "catalog.yaml"
    cat_path.write_text(CATALOG_YAML)
    turns = session_turns()
    gpu_ids = tuple(t.id for t in ie(turns) if t.text in GPU)
    prop = Proposal(id="p-gpu", name="Out of memory", keywords=("GPU", "memory", "OOM"),
                    quotes=(Quote(interview="a", turn=0, id=gpu_ids[0], text=GPU[0]),), size=len(gpu_ids),
                    n_interviews=2, interviews=("a", "b"), members=gpu_ids)
    row = prop.to_dict() | {"decision": "accept", "name": "GPU memory exhaustion",
                            "definition": "Training runs out of GPU memory and crashes."}
    (tmp_path / "proposals.jsonl").write_text(json.dumps(row) + "\n")
    done = apply_decisions(tmp_path / "proposals.jsonl", cat_path)
    assert done["accepted"] == ["gpu-memory-exhaustion"]
    ext = extend_catalog(model, load_catalog(cat_path))
    preds = ext.predict(turns)
    gpu = [p.scores["gpu-memory-exhaustion"] for p in preds if p.text in GPU]
    other = [p.scores["gpu-memory-exhaustion"] for p in preds if p.text not in GPU]
    assert min(gpu) > max(other)
    assert all(set(p.untrained) == set(p.categories) & {"gpu-memory-exhaustion"} for p in preds)

"""extractor.classify.store and the parts' own checks: a tampered model folder (its manifest
rewritten to match) is refused with one line naming the file, before any turn is read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from test_classify import make, tiny_turns

from extractor.classify import IssueClassifier
from extractor.classify.store import read_manifest
from extractor.embed import file_sha256
from extractor.errors import ModelError


@pytest.fixture(scope="module")
def saved(tmp_path_factory, request):
    from test_classify import CATALOG_YAML

    from extractor.catalog import load_catalog

    d = tmp_path_factory.mktemp("store")
    (d / "catalog.yaml").write_text(CATALOG_YAML)
    return make(load_catalog(d / "catalog.yaml")).fit(tiny_turns()).save(d / "model")


@pytest.fixture
def model(saved, tmp_path):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(saved, d)
    for p in d.iterdir():
        os.chmod(p, 0o644)
    return d


def reseal(d: Path, name: str) -> None:
    """Update the manifest to the file's new content (what a careful tamperer does)."""
    m = json.loads((d / "manifest.json").read_text())
    m["files"][name] = {"sha256": file_sha256(d / name), "bytes": (d / name).stat().st_size}
    (d / "manifest.json").write_text(json.dumps(m))


def edit_json(d: Path, name: str, change) -> None:
    doc = json.loads((d / name).read_text())
    change(doc)
    (d / name).write_text(json.dumps(doc))
    reseal(d, name)


def edit_tensor(d: Path, name: str, key: str, value: np.ndarray) -> None:
    t = load_file(str(d / name))
    t[key] = value
    save_file(t, str(d / name), metadata={"format": "qi-classifier@2"})
    reseal(d, name)


def refused(d: Path, message: str) -> None:
    with pytest.raises(ModelError, match=message) as e:
        IssueClassifier.load(d)
    assert "\n" not in str(e.value)


def test_untouched_model_loads(model):
    assert IssueClassifier.load(model).thresholds_.shape == (6,)


@pytest.mark.parametrize("value, found", [(float("nan"), "nan"), (-0.1, "-0.1"), (1.5, "1.5"), ("0.3", "'0.3'"),
                                          (True, "True"), (None, "None")])
def test_bad_threshold(model, value, found):
    edit_json(model, "thresholds.json", lambda doc: doc["categories"].__setitem__("drift", value))
    refused(model, rf"thresholds.json: categories.drift: expected a number in \[0, 1\], found {found}")


def test_missing_mitigation_threshold(model):
    edit_json(model, "thresholds.json", lambda doc: doc.pop("mitigation"))
    refused(model, "thresholds.json: expected a threshold for every label, found none for 'mitigation'")


@pytest.mark.parametrize("name, key, bad", [
    ("memory.safetensors", "embeddings", np.nan),
    ("heads.safetensors", "W", np.inf),
    ("scorer.safetensors", "pair_coef", np.nan),
    ("scorer.safetensors", "centroids", -np.inf),
    ("catalog.safetensors", "protos", np.nan),
])
def test_non_finite_tensor(model, name, key, bad):
    t = load_file(str(model / name))[key].copy()
    t.reshape(-1)[0] = bad
    edit_tensor(model, name, key, t)
    refused(model, f"{name}: tensor '{key}': expected finite values, found NaN or infinity")


@pytest.mark.parametrize("name, key, shape", [
    ("heads.safetensors", "W", (4, 7)),
    ("scorer.safetensors", "pair_coef", (5,)),
    ("scorer.safetensors", "phase_coef", (2, 4)),
    ("scorer.safetensors", "log_prior", (4,)),
    ("memory.safetensors", "labels", (16, 5)),
    ("catalog.safetensors", "cat_desc", (3, 63)),
])
def test_wrong_tensor_shape(model, name, key, shape):
    dtype = load_file(str(model / name))[key].dtype
    edit_tensor(model, name, key, np.zeros(shape, dtype))
    refused(model, rf"{name}: tensor '{key}': expected shape \(")


def test_labels_that_are_not_zero_or_one(model):
    Y = load_file(str(model / "memory.safetensors"))["labels"].copy()
    Y[0, 0] = 7
    edit_tensor(model, "memory.safetensors", "labels", Y)
    refused(model, "memory.safetensors: tensor 'labels': expected values 0 or 1")


def test_config_out_of_range(model):
    edit_json(model, "config.json", lambda doc: doc["model"].__setitem__("max_length", 100000))
    refused(model, "config.json: ModelConfig.max_length: expected an integer in 1..512, found 100000")


def test_card_not_an_object(model):
    (model / "card.json").write_text("[1, 2]")
    reseal(model, "card.json")
    refused(model, "card.json: expected a JSON object")


def test_manifest_that_is_dev_zero(model):
    (model / "manifest.json").unlink()
    (model / "manifest.json").symlink_to("/dev/zero")
    refused(model, "manifest.json: expected a regular model file, found a character device")


def test_manifest_that_is_a_fifo(model):
    (model / "manifest.json").unlink()
    os.mkfifo(model / "manifest.json")
    refused(model, "manifest.json: expected a regular model file, found a FIFO")


def test_listed_file_that_is_a_fifo(model):
    (model / "card.json").unlink()
    os.mkfifo(model / "card.json")
    refused(model, "card.json: expected a regular model file, found a FIFO")


def test_huge_card_is_refused_before_it_is_read(model):
    with open(model / "card.json", "r+b") as fh:
        fh.truncate(600 * 2**20)  # sparse: costs no disk
    m = json.loads((model / "manifest.json").read_text())
    m["files"]["card.json"]["bytes"] = 600 * 2**20
    (model / "manifest.json").write_text(json.dumps(m))
    refused(model, "card.json: expected a model file of at most 16 MiB, found 600 MiB")


def test_huge_manifest_is_refused(model):
    with open(model / "manifest.json", "r+b") as fh:
        fh.truncate(600 * 2**20)
    refused(model, "manifest.json: expected a regular model file of at most 1 MiB, found 600 MiB")


def test_manifest_names_every_required_file(model):
    assert set(read_manifest(model)["files"]) >= {"config.json", "thresholds.json", "memory.safetensors"}


@pytest.mark.parametrize("change, message", [
    ("nan", "adapter.safetensors: tensor '.*': expected finite values, found NaN or infinity"),
    ("shape", "adapter.safetensors: expected LoRA tensors that fit the base model, found"),
    ("config", r"config.json: adapter.r: expected an integer in 1..256, found 100000"),
])
def test_tampered_adapter_of_the_packaged_model(tmp_path, change, message):
    import shutil

    import torch
    from safetensors.torch import load_file as load_torch
    from safetensors.torch import save_file as save_torch

    from extractor.resources import packaged_model

    d = tmp_path / "m"
    shutil.copytree(packaged_model(), d)
    for p in d.iterdir():
        os.chmod(p, 0o644)
    if change == "config":
        edit_json(d, "config.json", lambda doc: doc["adapter"].__setitem__("r", 100000))
    else:
        state = load_torch(str(d / "adapter.safetensors"))
        key = sorted(state)[0]
        state[key] = state[key].clone()
        if change == "nan":
            state[key].view(-1)[0] = float("nan")
        else:
            state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
        save_torch(state, str(d / "adapter.safetensors"), metadata={"format": "qi-classifier@2"})
        reseal(d, "adapter.safetensors")
    refused(d, message)

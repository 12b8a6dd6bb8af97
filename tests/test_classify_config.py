"""extractor.classify.config: every setting is checked, unknown keys are refused."""

import pytest

from extractor.classify import ModelConfig, TrainConfig
from extractor.errors import ModelError


@pytest.mark.parametrize("cls, kw, message", [
    (TrainConfig, {"seed": "1"}, "TrainConfig.seed: expected an integer in 0..4294967295, found '1'"),
    (TrainConfig, {"threshold_folds": 1}, "threshold_folds: expected an integer in 2..100"),
    (TrainConfig, {"steps": 0}, "steps: expected an integer in 1..100000"),
    (TrainConfig, {"learning_rate": 0}, r"learning_rate: expected a number in \(0, 1\]"),
    (TrainConfig, {"pair_c_grid": (0.1, 0)}, r"pair_c_grid: expected a non-empty list, each a number in \(0, 1e\+06\]"),
    (TrainConfig, {"max_share_ratio": 0.5}, r"max_share_ratio: expected a number in \[1, 1e\+06\]"),
    (TrainConfig, {"fine_tune": "yes"}, "fine_tune: expected true or false"),
    (ModelConfig, {"lora_targets": "query"}, "lora_targets: expected a non-empty list, each a non-empty string"),
    (ModelConfig, {"memory_floor": 1.0}, r"memory_floor: expected a number in \[0, 1\)"),
    (ModelConfig, {"context_window": -1}, "context_window: expected an integer in 0..50"),
    (ModelConfig, {"max_length": 100000}, "max_length: expected an integer in 1..512, found 100000"),
    (ModelConfig, {"max_sentences": 10**9}, "max_sentences: expected an integer in 1..1000"),
])
def test_bad_settings(cls, kw, message):
    with pytest.raises(ModelError, match=message):
        cls(**kw)


def test_round_trip_and_unknown_keys():
    assert ModelConfig.from_dict(ModelConfig(max_length=128).to_dict()) == ModelConfig(max_length=128)
    with pytest.raises(ModelError, match="model/config.json: expected ModelConfig settings, found unknown key 'lr'"):
        ModelConfig.from_dict({"lr": 1}, where="model/config.json")
    with pytest.raises(ModelError, match="^m/config.json: ModelConfig.max_length: expected an integer in 1..512"):
        ModelConfig.from_dict({"max_length": 100000}, where="m/config.json")
    with pytest.raises(ModelError, match="expected a JSON object of TrainConfig settings, found list"):
        TrainConfig.from_dict([], where="card.json")

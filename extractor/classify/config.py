"""Settings of the classifier, in two parts.

:class:`ModelConfig` is what a saved model needs to predict (it is written to the model's
``config.json``); :class:`TrainConfig` is how a model was trained (written to its card, so a
run can be reproduced, never needed to predict). Both validate themselves on creation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from extractor.errors import ModelError


def _check(obj: Any, name: str, ok: bool, expected: str) -> None:
    if not ok:
        raise ModelError(f"{type(obj).__name__}.{name}: expected {expected}, found {getattr(obj, name)!r}")


def _is_int(v: Any, lo: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _is_num(v: Any, lo: float, strict: bool = False) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and (v > lo if strict else v >= lo))


class _Config:
    """Shared (de)serialisation: unknown keys are refused, so a typo never passes silently."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "config"):
        if not isinstance(d, Mapping):
            raise ModelError(f"{where}: expected a JSON object of {cls.__name__} settings, found {type(d).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown:
            raise ModelError(f"{where}: expected {cls.__name__} settings, found unknown key {unknown[0]!r}")
        try:
            return cls(**d)
        except TypeError as e:
            raise ModelError(f"{where}: expected {cls.__name__} settings, found {e}") from None


@dataclass
class ModelConfig(_Config):
    """What a saved model predicts with.

    ``base_model``: ``None`` = the packaged all-MiniLM-L6-v2, else a local sentence-transformers
    directory (safetensors weights only), or ``"hashing"`` (model-free, for tests).
    ``memory_floor``: cosine from which a labelled turn of the label memory starts to speak for
    a new turn; at cosine 1 (the same text) its labels are the prediction.
    """

    base_model: str | None = None
    max_length: int = 256
    use_question: bool = True
    use_context: bool = True
    context_window: int = 2
    max_sentences: int = 40
    lora_r: int = 8
    lora_alpha: int = 16
    lora_targets: tuple[str, ...] = ("query", "value")
    memory_floor: float = 0.97

    def __post_init__(self) -> None:
        if self.base_model is not None and not isinstance(self.base_model, str):
            self.base_model = str(self.base_model)
        for name in ("max_length", "max_sentences", "lora_r", "lora_alpha"):
            _check(self, name, _is_int(getattr(self, name), 1), "a positive integer")
        _check(self, "context_window", _is_int(self.context_window, 0), "an integer >= 0")
        for name in ("use_question", "use_context"):
            _check(self, name, isinstance(getattr(self, name), bool), "true or false")
        t = self.lora_targets
        _check(self, "lora_targets", not isinstance(t, (str, bytes)) and bool(t) and all(isinstance(x, str) for x in t),
               "a non-empty list of module names")
        self.lora_targets = tuple(t)
        _check(self, "memory_floor", _is_num(self.memory_floor, 0) and self.memory_floor < 1, "a number in [0, 1)")


@dataclass
class TrainConfig(_Config):
    """How a model is trained. ``fine_tune`` adapts the encoder with a LoRA adapter for a fixed
    number of ``steps`` (reproducible from ``seed``, whatever the machine's speed);
    ``fine_tune=False`` keeps the encoder frozen (``extractor train --fast``).
    ``warm_steps``: adapter steps when continuing from a trained model (``train --from``)."""

    seed: int = 42
    device: str = "auto"
    fine_tune: bool = True
    steps: int = 200
    warm_steps: int = 60
    learning_rate: float = 3e-4
    batch_size: int = 16
    train_max_length: int = 128
    lora_dropout: float = 0.1
    encode_batch_size: int = 32
    pair_c_grid: tuple[float, ...] = (0.001, 0.003, 0.03, 0.3, 3.0)
    l2_grid: tuple[float, ...] = (0.05, 0.5, 2.0)
    head_epochs: int = 300
    head_lr: float = 0.01
    max_pos_weight: float = 10.0
    weak_negative_weight: float = 0.5
    coders_weight: float = 1.0
    threshold_folds: int = 5
    min_threshold_support: int = 8
    max_share_ratio: float = 1.4

    def __post_init__(self) -> None:
        _check(self, "seed", _is_int(self.seed, 0), "an integer >= 0")
        _check(self, "device", isinstance(self.device, str) and bool(self.device), '"auto", "cpu", "cuda" or "cuda:N"')
        _check(self, "fine_tune", isinstance(self.fine_tune, bool), "true or false")
        for name in ("steps", "batch_size", "train_max_length", "encode_batch_size", "head_epochs",
                     "min_threshold_support"):
            _check(self, name, _is_int(getattr(self, name), 1), "a positive integer")
        _check(self, "warm_steps", _is_int(self.warm_steps, 0), "an integer >= 0")
        _check(self, "threshold_folds", _is_int(self.threshold_folds, 2), "an integer >= 2")
        for name in ("learning_rate", "head_lr"):
            _check(self, name, _is_num(getattr(self, name), 0, strict=True), "a number > 0")
        for name in ("max_pos_weight", "weak_negative_weight", "coders_weight"):
            _check(self, name, _is_num(getattr(self, name), 0), "a finite number >= 0")
        _check(self, "max_share_ratio", _is_num(self.max_share_ratio, 1), "a number >= 1")
        _check(self, "lora_dropout", _is_num(self.lora_dropout, 0) and self.lora_dropout < 1, "a number in [0, 1)")
        for name, strict in (("pair_c_grid", True), ("l2_grid", False)):
            g = getattr(self, name)
            _check(self, name, not isinstance(g, (str, bytes)) and bool(g) and all(_is_num(v, 0, strict) for v in g),
                   "a non-empty list of numbers " + ("> 0" if strict else ">= 0"))
            setattr(self, name, tuple(float(v) for v in g))

"""Settings of the classifier, in two parts.

:class:`ModelConfig` is what a saved model needs to predict (it is written to the model's
``config.json``); :class:`TrainConfig` is how a model was trained (written to its card, so a
run can be reproduced, never needed to predict). Both validate themselves on creation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from extractor.config import Bool, Int, Num, Opt, Seq, Str, check_fields
from extractor.errors import ModelError


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
        except ModelError as e:  # a value out of range: say in which file
            raise ModelError(f"{where}: {e}") from None


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
        # upper bounds: what the encoder can read (512 word pieces) and what keeps one turn's
        # features bounded; a tampered config.json is refused at load, not after minutes of work
        check_fields(self, {"base_model": Opt(Str()), "max_length": Int(1, 512), "use_question": Bool(),
                            "use_context": Bool(), "context_window": Int(0, 50), "max_sentences": Int(1, 1000),
                            "lora_r": Int(1, 256), "lora_alpha": Int(1, 4096), "lora_targets": Seq(Str()),
                            "memory_floor": Num(0, 1, hi_open=True)}, error=ModelError)
        self.lora_targets = tuple(self.lora_targets)


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
        check_fields(self, {
            "seed": Int(0, 2**32 - 1), "device": Str(), "fine_tune": Bool(), "steps": Int(1, 100_000),
            "warm_steps": Int(0, 100_000), "learning_rate": Num(0, 1, lo_open=True), "batch_size": Int(1, 4096),
            "train_max_length": Int(1, 512), "lora_dropout": Num(0, 1, hi_open=True),
            "encode_batch_size": Int(1, 4096), "pair_c_grid": Seq(Num(0, 1e6, lo_open=True)),
            "l2_grid": Seq(Num(0, 1e6)), "head_epochs": Int(1, 100_000), "head_lr": Num(0, 1, lo_open=True),
            "max_pos_weight": Num(0, 1e6), "weak_negative_weight": Num(0, 1e6), "coders_weight": Num(0, 1e6),
            "threshold_folds": Int(2, 100), "min_threshold_support": Int(1, 1_000_000),
            "max_share_ratio": Num(1, 1e6)}, error=ModelError)
        self.pair_c_grid = tuple(float(v) for v in self.pair_c_grid)
        self.l2_grid = tuple(float(v) for v in self.l2_grid)

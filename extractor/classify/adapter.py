"""Fine-tuning the encoder with a LoRA adapter, for a fixed number of steps.

The objective pairs each turn with catalog TEXT rather than with free label slots: a turn's
embedding is pulled towards the descriptions of its categories and phases (cosine logits,
binary cross-entropy; the descriptions are re-embedded every 10 steps without gradient), and a
relevance head on the embedding learns whether a turn reports an issue at all. With ~500 issue-bearing turns, free per-label weights learn the training
interviews' topics; definitions shared by every interview keep the encoder on the labels.

Each step draws half its batch from issue-bearing turns and half from the others (and, when
continuing from a model, a quarter from reviewed turns), from a generator seeded by
``TrainConfig.seed``: the same data and seed give the same adapter on the same hardware.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from extractor.catalog import Catalog
from extractor.classify.config import ModelConfig, TrainConfig
from extractor.classify.encoder import TurnEncoder, tokenize_batch
from extractor.classify.heads import build_targets
from extractor.errors import ModelError
from extractor.types import Turn

ADAPTER_FILE = "adapter.safetensors"
MAX_ADAPTER_BYTES = 256 * 2**20


def lora_config(model: ModelConfig, train: TrainConfig | None = None) -> dict:
    return {"r": model.lora_r, "alpha": model.lora_alpha, "target_modules": list(model.lora_targets),
            "dropout": train.lora_dropout if train else 0.0}


class Batches:
    """The seeded draw of each step's rows: half issue-bearing turns, half others, and a
    quarter reviewed turns when there are any."""

    def __init__(self, Yc: np.ndarray, examples: Sequence[Turn], batch_size: int, seed: int):
        rel = Yc.any(axis=1)
        self.rng = np.random.default_rng(seed)
        self.pos, self.neg = np.flatnonzero(rel), np.flatnonzero(~rel)
        self.reviewed = np.flatnonzero([t.label_source == "review" for t in examples])
        self.size = batch_size

    def draw(self, pool: np.ndarray, n: int) -> np.ndarray:
        return self.rng.choice(pool, size=n, replace=len(pool) < n) if len(pool) and n > 0 else np.zeros(0, int)

    def next(self) -> np.ndarray:
        n_rev = self.size // 4 if len(self.reviewed) else 0
        n_pos = (self.size - n_rev) // 2 if len(self.neg) else self.size - n_rev
        return np.concatenate([self.draw(self.reviewed, n_rev), self.draw(self.pos, n_pos),
                               self.draw(self.neg, self.size - n_rev - n_pos)]).astype(int)


class Objective:
    """Cosine logits of turns against catalog text (categories, phases) plus a relevance head."""

    def __init__(self, encoder: TurnEncoder, model, n_cat: int, n_phase: int, cfg: TrainConfig):
        import torch

        dev = encoder.st.device
        self.st, self.dev = encoder.st, dev
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(20.0), device=dev))
        self.cat_bias = torch.nn.Parameter(torch.full((n_cat,), -1.0, device=dev))
        self.phase_bias = torch.nn.Parameter(torch.full((n_phase,), -1.0, device=dev))
        self.rel_head = torch.nn.Linear(encoder.dim, 1).to(dev)
        self.params = [p for p in model.parameters() if p.requires_grad] + [
            self.logit_scale, self.cat_bias, self.phase_bias, *self.rel_head.parameters()]
        self.pos_weight = torch.tensor(min(cfg.max_pos_weight, n_cat - 1.0), device=dev)

    def embed(self, batch: list[str]):
        import torch

        feats = tokenize_batch(self.st, batch)
        feats = {k: (v.to(self.st.device) if hasattr(v, "to") else v) for k, v in feats.items()}
        return torch.nn.functional.normalize(self.st(feats)["sentence_embedding"], dim=-1)

    def loss(self, e_t, e_c, e_p, yc: np.ndarray, yp: np.ndarray, rel: np.ndarray):
        import torch

        bce = torch.nn.functional.binary_cross_entropy_with_logits
        scale = self.logit_scale.exp()
        r = torch.from_numpy(rel.astype(np.float32)).to(self.dev)
        cat_loss = bce(scale * e_t @ e_c.T + self.cat_bias, torch.from_numpy(yc).to(self.dev),
                       pos_weight=self.pos_weight, reduction="none").sum(dim=1)
        cat_loss = (cat_loss * r).sum() / r.sum().clamp(min=1.0)
        phase_loss = bce(scale * e_t @ e_p.T + self.phase_bias, torch.from_numpy(yp).to(self.dev))
        rel_loss = bce(self.rel_head(e_t).squeeze(-1), r)
        return cat_loss + phase_loss + rel_loss


def fine_tune(encoder: TurnEncoder, examples: Sequence[Turn], catalog: Catalog, model_cfg: ModelConfig,
              cfg: TrainConfig, *, steps: int, progress: bool = False) -> list[float]:
    """Train ``encoder``'s adapter (attached here if it has none) for ``steps`` steps on the
    labelled ``examples``; returns the loss of every step."""
    import torch
    from tqdm.auto import tqdm

    from extractor.classify.features import describe

    torch.manual_seed(cfg.seed)
    Yc, Yh, _ = build_targets(examples, catalog, cfg)
    Yp, rel = Yh[:, : len(catalog.phase_ids)], np.asarray(Yc.any(axis=1))
    batches = Batches(Yc, examples, cfg.batch_size, cfg.seed)
    texts = [t.text for t in examples]
    cat_text, phase_text = [describe(e) for e in catalog.categories], [describe(e) for e in catalog.phases]
    model = encoder.attach_adapter(lora_config(model_cfg, cfg))
    obj = Objective(encoder, model, len(cat_text), len(phase_text), cfg)
    opt = torch.optim.AdamW(obj.params, lr=cfg.learning_rate, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)))
    st, losses = encoder.st, []
    old_len = st.max_seq_length
    st.max_seq_length = min(old_len, cfg.train_max_length)
    st.train()
    bar = tqdm(total=steps, desc="fine-tuning", unit="step", disable=not progress)
    try:
        for step in range(steps):
            idx = batches.next()
            if step % 10 == 0:  # catalog text moves slowly; embedding it every step doubles the cost
                with torch.no_grad():
                    e_c, e_p = obj.embed(cat_text), obj.embed(phase_text)
            loss = obj.loss(obj.embed([texts[i] for i in idx]), e_c, e_p, Yc[idx], Yp[idx], rel[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.item()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    finally:
        bar.close()
        st.max_seq_length = old_len
        st.eval()
        model.eval()
        encoder.changed()
    return losses


class Adapter:
    """The encoder's LoRA adapter as a model part: ``adapter.safetensors`` (its settings are in
    ``config.json``)."""

    FILES = (ADAPTER_FILE,)

    def __init__(self, encoder: TurnEncoder):
        self.encoder = encoder

    def save(self, writer) -> None:
        from safetensors.torch import save_file

        save_file(self.encoder.adapter_state(), str(writer.path(ADAPTER_FILE)), metadata=writer.meta)

    @classmethod
    def load(cls, reader, encoder: TurnEncoder, cfg: Any) -> Adapter:
        """Attach the saved adapter to ``encoder``; its settings and every tensor are checked
        (finite values, the shapes the base model gives a LoRA of these settings)."""
        from safetensors import SafetensorError
        from safetensors.torch import load as load_torch

        from extractor.classify.store import read_bytes

        where = reader.path / ADAPTER_FILE
        check_adapter_config(reader.path / "config.json", cfg)
        try:
            state = load_torch(read_bytes(where, MAX_ADAPTER_BYTES))
        except (SafetensorError, OSError, ValueError, TypeError) as e:
            raise ModelError(f"{where}: expected a safetensors file, found {e}") from None
        bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())), None)
        if bad is not None:
            raise ModelError(f"{where}: tensor {bad!r}: expected finite values, found NaN or infinity")
        try:
            encoder.attach_adapter(cfg, state)
        except (RuntimeError, ValueError, KeyError) as e:
            raise ModelError(f"{where}: expected LoRA tensors that fit the base model, found "
                             f"{str(e).splitlines()[0][:160]}") from None
        return cls(encoder)


def check_adapter_config(where: Path, cfg: Any) -> None:
    """``{"r", "alpha", "target_modules", "dropout"}`` with sane values."""
    from extractor.classify.store import check_number

    if not isinstance(cfg, dict) or not {"r", "alpha", "target_modules"} <= set(cfg):
        raise ModelError(f"{where}: adapter: expected {{r, alpha, target_modules, dropout}}, found {cfg!r:.60}")
    for key, hi in (("r", 256), ("alpha", 4096)):
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise ModelError(f"{where}: adapter.{key}: expected an integer in 1..{hi}, found {v!r:.40}")
    targets = cfg["target_modules"]
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
        raise ModelError(f"{where}: adapter.target_modules: expected a list of module names, found {targets!r:.60}")
    check_number(f"{where}: adapter.dropout", cfg.get("dropout", 0.0), 0.0, 0.99)

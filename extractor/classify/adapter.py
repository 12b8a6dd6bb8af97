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
from typing import Sequence

import numpy as np

from extractor.catalog import Catalog
from extractor.classify.config import ModelConfig, TrainConfig
from extractor.classify.encoder import TurnEncoder, tokenize_batch
from extractor.classify.heads import build_targets
from extractor.types import Turn


def lora_config(model: ModelConfig, train: TrainConfig | None = None) -> dict:
    return {"r": model.lora_r, "alpha": model.lora_alpha, "target_modules": list(model.lora_targets),
            "dropout": train.lora_dropout if train else 0.0}


def fine_tune(encoder: TurnEncoder, examples: Sequence[Turn], catalog: Catalog, model_cfg: ModelConfig,
              cfg: TrainConfig, *, steps: int, progress: bool = False) -> list[float]:
    """Train ``encoder``'s adapter (attached here if it has none) for ``steps`` steps on the
    labelled ``examples``; returns the loss of every step."""
    import torch
    from tqdm.auto import tqdm

    from extractor.classify.features import describe

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    Yc, Yh, _ = build_targets(examples, catalog, cfg)
    Yp = Yh[:, : len(catalog.phase_ids)]
    rel = Yc.any(axis=1)
    pos, neg = np.flatnonzero(rel), np.flatnonzero(~rel)
    reviewed = np.flatnonzero([t.label_source == "review" for t in examples])
    texts = [t.text for t in examples]
    cat_text = [describe(e) for e in catalog.categories]
    phase_text = [describe(e) for e in catalog.phases]

    model = encoder.attach_adapter(lora_config(model_cfg, cfg))
    st = encoder.st
    dev = st.device
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(20.0), device=dev))
    cat_bias = torch.nn.Parameter(torch.full((len(cat_text),), -1.0, device=dev))
    phase_bias = torch.nn.Parameter(torch.full((len(phase_text),), -1.0, device=dev))
    rel_head = torch.nn.Linear(encoder.dim, 1).to(dev)
    params = [p for p in model.parameters() if p.requires_grad] + [logit_scale, cat_bias, phase_bias,
                                                                   *rel_head.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)))
    pos_weight = torch.tensor(min(cfg.max_pos_weight, len(cat_text) - 1.0), device=dev)
    old_len = st.max_seq_length
    st.max_seq_length = min(old_len, cfg.train_max_length)
    st.train()

    def embed(batch: list[str]):
        feats = tokenize_batch(st, batch)
        feats = {k: (v.to(st.device) if hasattr(v, "to") else v) for k, v in feats.items()}
        return torch.nn.functional.normalize(st(feats)["sentence_embedding"], dim=-1)

    def draw(pool: np.ndarray, n: int) -> np.ndarray:
        return rng.choice(pool, size=n, replace=len(pool) < n) if len(pool) and n > 0 else np.zeros(0, int)

    losses = []
    bar = tqdm(total=steps, desc="fine-tuning", unit="step", disable=not progress)
    try:
        for step in range(steps):
            n_rev = cfg.batch_size // 4 if len(reviewed) else 0
            n_pos = (cfg.batch_size - n_rev) // 2 if len(neg) else cfg.batch_size - n_rev
            idx = np.concatenate([draw(reviewed, n_rev), draw(pos, n_pos),
                                  draw(neg, cfg.batch_size - n_rev - n_pos)]).astype(int)
            if step % 10 == 0:  # catalog text moves slowly; embedding it every step doubles the cost
                with torch.no_grad():
                    e_c, e_p = embed(cat_text), embed(phase_text)
            e_t = embed([texts[i] for i in idx])
            scale = logit_scale.exp()
            r = torch.from_numpy(rel[idx].astype(np.float32)).to(dev)
            cat_loss = torch.nn.functional.binary_cross_entropy_with_logits(
                scale * e_t @ e_c.T + cat_bias, torch.from_numpy(Yc[idx]).to(dev), pos_weight=pos_weight,
                reduction="none").sum(dim=1)
            cat_loss = (cat_loss * r).sum() / r.sum().clamp(min=1.0)
            phase_loss = torch.nn.functional.binary_cross_entropy_with_logits(
                scale * e_t @ e_p.T + phase_bias, torch.from_numpy(Yp[idx]).to(dev))
            rel_loss = torch.nn.functional.binary_cross_entropy_with_logits(rel_head(e_t).squeeze(-1), r)
            loss = cat_loss + phase_loss + rel_loss
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

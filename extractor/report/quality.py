"""How far to trust the codes: the model's own measured F1 (from its card) beside human agreement."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Agreement between the study's human coders, measured with `extractor evaluate` on the
# shared corpus (coder vs coder, turn-level micro-F1); used when the model card has none.
HUMAN_AGREEMENT_FALLBACK = {"categories": 0.43, "phases": 0.53,
                            "source": "two human coders on the study's interviews (turn-level micro-F1)"}

OPTIMISTIC = ("cross-validation inside the training data (optimistic: the same "
              "interviews chose the settings)")


def f1_pair(obj: Any) -> dict[str, float]:
    """``{"categories": F1, "phases": F1}`` from the shapes a card uses: a number per group,
    or a mapping per group holding ``f1`` / ``micro_f1``."""
    out: dict[str, float] = {}
    if not isinstance(obj, Mapping):
        return out
    for group in ("categories", "phases"):
        v = obj.get(group)
        if isinstance(v, Mapping):
            v = next((v[k] for k in ("micro_f1", "f1", "F1") if isinstance(v.get(k), (int, float))), None)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[group] = float(v)
    return out


def own_evaluation(card: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``card["evaluation"]`` when it measured this very model, else None.

    A model retrained from another (``warm_start_from``) may carry the evaluation of the
    model it started from; those figures are not its own unless the evaluation names this
    model's training data (``evaluation["data_sha256"] == card["data_sha256"]``).
    """
    ev = card.get("evaluation")
    if not isinstance(ev, Mapping):
        return None
    if "data_sha256" in ev:
        return ev if ev.get("data_sha256") == card.get("data_sha256") else None
    return None if card.get("warm_start_from") else ev


def _from_evaluation(out: dict[str, Any], ev: Mapping[str, Any]) -> None:
    model_f1 = f1_pair(ev.get("model")) or f1_pair(ev)
    human = f1_pair(ev.get("human")) or f1_pair({g: (ev.get(g) or {}).get("human_f1")
                                                 for g in ("categories", "phases")
                                                 if isinstance(ev.get(g), Mapping)})
    if model_f1:
        out["model_f1"] = model_f1
        out["model_source"] = str(ev.get("method") or ev.get("description")
                                  or "measured on interviews the model was not trained on")
    if human:
        out["human_f1"] = human
        out["human_source"] = str(ev.get("human_source") or "human coders on the same interviews")


def _from_metrics(out: dict[str, Any], metrics: Any) -> None:
    if out["model_f1"] or not isinstance(metrics, Mapping):
        return
    for key, v in metrics.items():
        pair = f1_pair(v)
        if pair and "f1" in key.lower():
            out["model_f1"] = pair
            out["model_source"] = OPTIMISTIC if "optimistic" in key or "inner" in key else key.replace("_", " ")
            return


def model_quality(model: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the report says about how far to trust the codes, from the model's card.

    Looks for held-out figures first (``card["evaluation"]``: ``{"model": {...}, "human":
    {...}}`` or per-group ``f1`` / ``human_f1``) when they are this model's own
    (:func:`own_evaluation`), then the training-time inner cross-validation
    (``card["metrics"]``, always the model's own). Human agreement falls back to
    :data:`HUMAN_AGREEMENT_FALLBACK`. Missing figures stay missing (the report says so).
    """
    model = dict(model or {})
    card = model.get("card") or {}
    out: dict[str, Any] = {"name": str(model.get("name") or Path(str(model.get("path") or "")).name or ""),
                           "fingerprint": str(model.get("fingerprint") or "")[:12],
                           "created": str(card.get("created") or ""),
                           "model_f1": {}, "model_source": "", "human_f1": {}, "human_source": ""}
    ev = own_evaluation(card)
    if ev is not None:
        _from_evaluation(out, ev)
    _from_metrics(out, card.get("metrics"))
    if not out["human_f1"]:
        out["human_f1"] = {k: v for k, v in HUMAN_AGREEMENT_FALLBACK.items() if k != "source"}
        out["human_source"] = HUMAN_AGREEMENT_FALLBACK["source"]
    return out

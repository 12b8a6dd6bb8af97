"""Shared fixtures: tiny inline data, the shared corpus when present, one encoder per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("QI_CORPUS", REPO.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus (``../shared/corpus``); tests that need it skip when it is absent."""
    if not (CORPUS / "gold" / "turns.jsonl").exists():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def encoder():
    """The real bundled MiniLM, loaded once per test session."""
    from extractor.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(device="cpu")

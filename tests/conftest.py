"""Shared fixtures: tiny inline data, the shared corpus when present, one encoder per session."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture
def browser():
    """Headless Chromium through selenium (the web reviewers' tests); skips with the reason when
    selenium, Chromium or its driver is missing or cannot start."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver")
    binary = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if not driver_path or not binary:
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,900", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    try:
        driver = webdriver.Chrome(options=opts, service=Service(driver_path))
    except Exception as e:  # noqa: BLE001 - any start failure is a skip, with its reason
        pytest.skip(f"headless Chromium could not start: {str(e).splitlines()[0][:200]}")
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()

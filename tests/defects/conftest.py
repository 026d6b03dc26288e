"""Fixtures for the defect tests: the shipped model (loaded once) and the committed samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.vision.defects.model import DefectModel

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "fixtures" / "samples" / "defects"


@pytest.fixture(scope="session")
def shipped_model() -> DefectModel:
    """The model the manifest names, loaded the way the edge loads it (sha256 gate, 1 thread)."""
    return DefectModel.load()


@pytest.fixture(scope="session")
def samples() -> dict[str, dict[str, object]]:
    """Committed sample frames: relative path -> {"label", "box", ...}."""
    truth: dict[str, dict[str, object]] = json.loads((SAMPLES / "truth.json").read_text())
    return truth

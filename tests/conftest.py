"""Shared test fixtures: where the external corpus and the bundled fixtures are."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


def corpus_dir() -> Path | None:
    """``$PEVM_CORPUS`` or ``../shared/corpus`` beside the repository, if present."""
    env = os.environ.get("PEVM_CORPUS")
    path = Path(env) if env else REPO.parent / "shared" / "corpus"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_dir()
    if path is None:
        pytest.skip("external corpus not found: set PEVM_CORPUS or place it at "
                    "../shared/corpus beside the repository")
    return path

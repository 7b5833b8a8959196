"""Shared test setup: every test gets its own data and cache folders, Qt runs offscreen, and the
real datasets in ../shared/data are found (tests that need them skip when they are absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Must be set before any QApplication exists: with no display Qt would abort the process.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("STUDIO_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(root / "cache"))
    monkeypatch.delenv("STUDIO_DATASET_MIRROR", raising=False)
    return root


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 40 KB of the demo stories: enough for a tiny model's loss to fall in a few dozen steps."""
    from studio.core.data.demo import write_demo_corpus

    return write_demo_corpus(tmp_path_factory.mktemp("corpus") / "stories.txt", stories=100, seed=3)

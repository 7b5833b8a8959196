"""Shared test setup: every test gets its own data and cache folders, Qt runs offscreen, the
real datasets in ../shared/data are found (tests that need them skip when they are absent), and
Hypothesis runs under a named profile."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

# Must be set before any QApplication exists: with no display Qt would abort the process.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (default "ci"):
# - ci: derandomized, so every run (CI's, and a plain local one) tries the same examples and a
#   failure reproduces; no example database, so nothing is written into the repository.
# - nightly: ten times the examples from a random seed, for a deeper local run; examples that
#   failed are kept in the user cache folder (never in the repository) and tried first next time.
# No deadlines: on a shared 2-core machine a slow example is not a wrong one.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=100, print_blob=True)
settings.register_profile(
    "nightly", max_examples=1000, deadline=None, print_blob=True,
    database=DirectoryBasedExampleDatabase(str(platformdirs.user_cache_path("studio") / "hypothesis")),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("STUDIO_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("STUDIO_CONFIG_DIR", str(root / "config"))  # preferences
    monkeypatch.delenv("STUDIO_DATASET_MIRROR", raising=False)
    # Messages are asserted in English whatever the machine's own language; a test that wants
    # another language sets it itself (and this puts English back afterwards).
    from studio.core import i18n

    monkeypatch.setenv("STUDIO_LANG", "en")
    i18n.set_language("en")
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

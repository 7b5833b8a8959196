"""Where Studio keeps things, from platformdirs (the maintained successor of appdirs).

Environment variables override each folder, which is how tests and CI keep a user's real folders
untouched: ``STUDIO_DATA_DIR`` (runs, datasets), ``STUDIO_CACHE_DIR`` (token caches),
``STUDIO_CONFIG_DIR`` (preferences). The data folder chosen in Preferences reaches
:func:`data_dir` through ``STUDIO_DATA_DIR`` (``studio.core.preferences``), so child processes
inherit it; preferences themselves live in the config folder, which that choice cannot move.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP = "studio"


def data_dir() -> Path:
    path = Path(os.environ.get("STUDIO_DATA_DIR") or platformdirs.user_data_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    path = Path(os.environ.get("STUDIO_CONFIG_DIR") or platformdirs.user_config_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    path = Path(os.environ.get("STUDIO_CACHE_DIR") or platformdirs.user_cache_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_dir() -> Path:
    path = data_dir() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def token_cache_dir() -> Path:
    path = cache_dir() / "tokens"
    path.mkdir(parents=True, exist_ok=True)
    return path


def studio_command(*args: str) -> list[str]:
    """How to start ``studio`` again as a child process: this Python with ``-m studio``, or, in a
    frozen (PyInstaller) build, the bundle's own executable."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "studio", *args]

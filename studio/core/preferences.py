"""A person's preferences: where Studio keeps its data, the device and CPU threads new runs use,
the language, the theme, how often live plots redraw, and whether the welcome screen is shown.

They are kept as JSON in the user config folder (``paths.config_dir()``, not the data folder, which
is one of the preferences), written atomically. The file is treated as untrusted input, like any
file a person or another program may have edited: a value of the wrong type or out of range falls
back to its default with a logged reason, an unreadable file gives the defaults, and nothing in it
can make loading fail.

How each preference takes effect:

- ``data_folder`` reaches :func:`studio.core.paths.data_dir` through ``STUDIO_DATA_DIR``
  (:func:`use_data_folder`), so new runs, downloaded datasets and every child process (which
  inherits the environment) use it. A ``STUDIO_DATA_DIR`` set before Studio started wins at
  startup, as the environment does for every folder.
- ``device`` and ``cpu_threads`` fill in runs whose own settings leave them to Studio
  (``run.device = "auto"``, ``run.threads = 0``): :meth:`Preferences.apply_to_run`. They reach
  the training child in the configuration it is given.
- ``language`` is read by :func:`studio.core.i18n.choose_language` after ``--lang`` and
  ``STUDIO_LANG``; it applies at the next start.
- ``theme``, ``plot_refresh_ms`` and ``show_welcome`` are the window's to apply.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from babel import Locale, UnknownLocaleError

from studio.core.config import RunConfig
from studio.core.fileio import atomic_write_text
from studio.core.i18n import N_, _, available_languages
from studio.core.paths import APP, config_dir

log = logging.getLogger("studio.preferences")

FILE_NAME = "preferences.json"
DATA_ENV = "STUDIO_DATA_DIR"
SYSTEM_LANGUAGE = "system"

# Values offered, with their labels (English; translated where shown).
DEVICES = ("auto", "cpu", "cuda", "mps")
DEVICE_LABELS = {"auto": N_("Automatic (a GPU when there is one)"), "cpu": N_("CPU"), "cuda": N_("NVIDIA GPU (CUDA)"),
                 "mps": N_("Apple GPU (Metal)")}
THEMES = ("system", "light", "dark")
THEME_LABELS = {"system": N_("Follow the system"), "light": N_("Light"), "dark": N_("Dark")}
# The live plots redraw on a timer; faster than 20 ms costs the training process CPU for nothing
# a person can see, slower than 5 s no longer looks live.
MIN_REFRESH_MS, MAX_REFRESH_MS = 20, 5000
MAX_THREADS = 512  # run.threads' own limit


@dataclass
class Preferences:
    data_folder: str = ""  # "" keeps the default (platformdirs, or STUDIO_DATA_DIR)
    device: str = "auto"
    language: str = SYSTEM_LANGUAGE  # a language code, or "system"
    theme: str = "system"
    plot_refresh_ms: int = 100
    cpu_threads: int = 0  # 0: one fewer than the cores (the engine's default)
    show_welcome: bool = True

    # ---- checking -----------------------------------------------------------------------------

    def problem(self, name: str) -> str | None:
        """Why this field's value cannot be used (in words), or None."""
        value = getattr(self, name)
        default = getattr(Preferences(), name)
        if type(value) is not type(default):  # bool is not int, int is not a string
            return _("expected {kind}, got {value}").format(kind=_(_KIND_WORDS[type(default)]), value=repr(value))
        if name == "data_folder" and value and not Path(value).expanduser().is_absolute():
            return _("{value} is not an absolute folder path").format(value=repr(value))
        if name == "device" and value not in DEVICES:
            return _("must be one of {choices} (got {value})").format(choices=", ".join(DEVICES), value=repr(value))
        if name == "theme" and value not in THEMES:
            return _("must be one of {choices} (got {value})").format(choices=", ".join(THEMES), value=repr(value))
        if name == "language" and value != SYSTEM_LANGUAGE and value not in available_languages():
            choices = ", ".join([SYSTEM_LANGUAGE, *available_languages()])
            return _("must be one of {choices} (got {value})").format(choices=choices, value=repr(value))
        if name == "plot_refresh_ms" and not MIN_REFRESH_MS <= value <= MAX_REFRESH_MS:
            return _("must be between {low} and {high} ms (got {value})").format(low=MIN_REFRESH_MS, high=MAX_REFRESH_MS, value=value)
        if name == "cpu_threads" and not 0 <= value <= MAX_THREADS:
            return _("must be between 0 and {high} (got {value})").format(high=MAX_THREADS, value=value)
        return None

    # ---- (de)serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, reasons: list[str] | None = None) -> Preferences:
        """Preferences from untrusted data: each value that cannot be used is replaced by its
        default, and ``reasons`` (when given) says why, one sentence per value."""
        reasons = [] if reasons is None else reasons
        prefs = cls()
        if not isinstance(data, Mapping):
            reasons.append(_("the preferences are not a JSON object; using the defaults"))
            return prefs
        names = [f.name for f in dataclasses.fields(cls)]
        for key, value in data.items():
            if key not in names:
                reasons.append(_("unknown preference {key} ignored").format(key=repr(key)))
                continue
            candidate = dataclasses.replace(prefs, **{key: value})
            problem = candidate.problem(key)
            if problem is None:
                prefs = candidate
            else:
                # Translators: {key} is a preference's name as written in the file (plot_refresh_ms), kept as is.
                reasons.append(_("preference {key}: {problem}; using the default").format(key=key, problem=problem))
        return prefs

    # ---- what runs take from them -------------------------------------------------------------

    def apply_to_run(self, config: RunConfig) -> RunConfig:
        """``config`` with the device and CPU threads filled in where the run leaves them to Studio
        (``run.device = "auto"``, ``run.threads = 0``); a run's own explicit choice wins."""
        run = config.run
        changes: dict[str, Any] = {}
        if run.device == "auto" and self.device != "auto":
            changes["device"] = self.device
        if run.threads == 0 and self.cpu_threads:
            changes["threads"] = self.cpu_threads
        if not changes:
            return config
        return dataclasses.replace(config, run=dataclasses.replace(run, **changes))


_KIND_WORDS = {str: N_("text"), int: N_("a whole number"), bool: N_("true or false")}


def preferences_path() -> Path:
    return config_dir() / FILE_NAME


def read_preferences(path: Path | None = None) -> tuple[Preferences, list[str]]:
    """The saved preferences and the reasons any value was not used (also logged). A missing
    file is the defaults with no reason; an unreadable one is the defaults with its reason."""
    path = path or preferences_path()
    reasons: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Preferences(), []
    except (OSError, UnicodeDecodeError) as e:
        reasons.append(_("cannot read {path}: {reason}; using the defaults").format(path=path, reason=e))
        prefs = Preferences()
    else:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError; nesting can recurse
            reasons.append(_("{path} is not valid JSON ({reason}); using the defaults").format(path=path, reason=e))
            data = {}
        prefs = Preferences.from_dict(data, reasons)
    for reason in reasons:
        log.warning("%s", reason)
    return prefs, reasons


def load_preferences(path: Path | None = None) -> Preferences:
    return read_preferences(path)[0]


def save_preferences(prefs: Preferences, path: Path | None = None) -> None:
    """Write ``prefs`` atomically (a crash leaves the old file or the new one, never half of one)."""
    path = path or preferences_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(prefs.to_dict(), indent=2, ensure_ascii=False) + "\n")


def update_preferences(**changes: Any) -> Preferences:
    """Read, change some values, write back; returns what was written."""
    prefs = dataclasses.replace(load_preferences(), **changes)
    save_preferences(prefs)
    return prefs


# ---- the data folder ---------------------------------------------------------------------------


def use_data_folder(folder: str, previous: str = "", environ: MutableMapping[str, str] | None = None) -> None:
    """Point ``data_dir()`` at ``folder`` from now on, for this process and the processes it starts.
    ``folder`` "" goes back to the default: ``STUDIO_DATA_DIR`` is removed if it is the folder this
    preference had set (``previous``), and left alone if the environment set it."""
    env = os.environ if environ is None else environ
    if folder:
        env[DATA_ENV] = str(Path(folder).expanduser())
    elif previous and env.get(DATA_ENV) == str(Path(previous).expanduser()):
        del env[DATA_ENV]


def apply_at_startup(prefs: Preferences, environ: MutableMapping[str, str] | None = None) -> None:
    """What takes effect before anything reads a folder: the data folder, unless the environment
    already names one (``STUDIO_DATA_DIR=... studio`` wins, as for every folder)."""
    env = os.environ if environ is None else environ
    if prefs.data_folder and not env.get(DATA_ENV):
        use_data_folder(prefs.data_folder, environ=env)


# ---- how the dialog offers them ----------------------------------------------------------------

# Each language by its own name (an endonym is what a person looks for in a list of languages).
LANGUAGE_NAMES = {"en": "English", "zh_CN": "简体中文"}


def language_name(code: str) -> str:
    if code in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[code]
    try:
        return str(Locale.parse(code).get_display_name(code) or code)
    except (ValueError, UnknownLocaleError):
        return code


def default_data_folder() -> str:
    """Where the data folder is when Preferences do not choose one (and the environment does not)."""
    return platformdirs.user_data_dir(APP, appauthor=False)

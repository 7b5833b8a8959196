"""Files shipped with Studio (example configs, icons, translations).

In a source checkout they are in ``resources/`` beside the package; a wheel carries them inside
the package as ``studio/_resources``.
"""

from __future__ import annotations

from pathlib import Path

from studio.core import i18n  # the module, not its names: i18n itself reads resources_dir()
from studio.core.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    for candidate in (_PACKAGE / "_resources", _PACKAGE.parent / "resources"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("Studio's resources folder is missing from this installation")


def presets_dir() -> Path:
    return resources_dir() / "configs"


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.toml"))


def find_config(ref: str) -> Path:
    """A config file path, or the name of a shipped preset (``demo-gpt``)."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    preset = presets_dir() / f"{ref.removesuffix('.toml')}.toml"
    if preset.is_file():
        return preset
    raise ConfigError(
        i18n._("{ref} is neither a config file nor a preset (presets: {presets})").format(
            ref=repr(ref), presets=", ".join(preset_names())
        )
    )

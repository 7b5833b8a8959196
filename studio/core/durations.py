"""Durations as settings write them: "90s", "3m", "1h30m" (``train.time_budget``)."""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(h|m|s)", re.IGNORECASE)
_SECONDS_IN = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float | None:
    """Seconds in "90s", "3m", "1.5h", "1h30m" or "45" (seconds); None for an empty text. Raises
    ValueError for anything else, or for no time at all."""
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"\d+(?:\.\d*)?", text):
        seconds = float(text)
    else:
        if not re.fullmatch(r"(?:\s*(?:\d+(?:\.\d*)?|\.\d+)\s*[hms])+\s*", text, re.IGNORECASE):
            raise ValueError(text)
        seconds = sum(float(n) * _SECONDS_IN[unit.lower()] for n, unit in _DURATION_PART.findall(text))
    if not seconds > 0:
        raise ValueError(text)
    return seconds


def format_duration(seconds: float) -> str:
    """The other way: 4830 -> "1h20m30s", 2.5 -> "2.5s"."""
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s")
    whole = int(round(seconds))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")

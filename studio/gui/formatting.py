"""Numbers, moments and a few names as the window shows them, in the current language.

Counts, parameter numbers, losses and durations go through :func:`number` (Babel's grouping and
decimal sign for the language, see ``studio.core.i18n.format_number``); a moment through
:func:`moment`. Metric names are the keys the engine reports (``accuracy``, ``exact_match``),
shown through :func:`metric_name`.
"""

from __future__ import annotations

import math

from studio.core.i18n import N_, _, format_datetime, format_number

# Translators: the metrics a fine-tuning run reports, as column headings, legend entries and the
# search's choices. BLEU, chrF, ROUGE and F1 are names that stay as they are.
METRIC_NAMES = {"valid_loss": N_("valid_loss"), "accuracy": N_("accuracy"), "exact_match": N_("exact_match")}


def number(value: float | int, digits: int | None = None) -> str:
    """``value`` with the language's grouping and decimal sign (``digits`` after the point when
    given); NaN and infinities as Python writes them, which Babel does not."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value}"
    return format_number(value, digits)


def moment(timestamp: float | None) -> str:
    """A moment (a run's start) as the language writes dates; '' when there is none."""
    return "" if timestamp is None else format_datetime(timestamp)


def metric_name(name: str) -> str:
    return _(METRIC_NAMES[name]) if name in METRIC_NAMES else name

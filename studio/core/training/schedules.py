"""Learning-rate schedules as plain functions of the step (and, under a time budget, of the share
of the budget used), so resuming needs nothing but the step and the training time, both of which
the checkpoint keeps."""

from __future__ import annotations

import math

from studio.core.config import ScheduleConfig


def lr_at(step: int, peak: float, total_steps: int, schedule: ScheduleConfig) -> float:
    """The rate for optimizer step ``step`` (0-based): linear warm-up, then the chosen decay."""
    warmup = min(schedule.warmup_steps, max(0, total_steps - 1))
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    floor = peak * schedule.min_lr_ratio
    if schedule.decay == "constant" or total_steps <= warmup + 1:
        return peak
    progress = min(1.0, (step - warmup) / (total_steps - 1 - warmup))
    return _decayed(progress, peak, floor, schedule)


def _decayed(progress: float, peak: float, floor: float, schedule: ScheduleConfig) -> float:
    """The decay curve at ``progress`` (0 at the end of warm-up, 1 at the last step or the end of
    the budget), from ``peak`` down to ``floor``."""
    if schedule.decay == "linear":
        return peak - (peak - floor) * progress
    if schedule.decay == "wsd":
        # Warm-up, stable, decay: the peak until the last ``decay_fraction`` of training, then a
        # straight line to the floor, so the rate is at its floor exactly at the end.
        start = 1.0 - schedule.decay_fraction
        if progress <= start or schedule.decay_fraction <= 0:
            return peak
        return peak - (peak - floor) * (progress - start) / schedule.decay_fraction
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))


def lr_within_budget(step: int, used: float, peak: float, total_steps: int, schedule: ScheduleConfig) -> float:
    """The rate for optimizer step ``step`` when training stops at a time budget, ``used`` being the
    share of it spent so far (0 to 1).

    The decay follows the budget instead of the steps: its progress is the share of the budget
    used, or of the steps if those run out first (whichever is further along, so the rate always
    reaches its floor at the end). Warm-up is still counted in steps, but never lifts the rate above
    the decayed value: the rate is the lower of the warm-up ramp and the decay curve, so a warm-up
    longer than the budget allows still ends in the decay instead of at the peak.
    """
    warmup = schedule.warmup_steps
    ramp = peak * (step + 1) / warmup if warmup and step < warmup else peak
    floor = peak * schedule.min_lr_ratio
    if schedule.decay == "constant":
        return ramp
    progress = min(1.0, max(used, step / max(1, total_steps - 1)))
    return min(ramp, _decayed(progress, peak, floor, schedule))

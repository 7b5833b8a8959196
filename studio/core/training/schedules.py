"""Learning-rate schedules as plain functions of the step, so resuming needs nothing but the step."""

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
    if schedule.decay == "linear":
        return peak - (peak - floor) * progress
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))

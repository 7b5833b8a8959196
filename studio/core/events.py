"""What the engine reports while it works: small frozen records of plain Python values.

Events cross threads (the GUI turns them into Qt signals) and processes (distributed ranks, child
processes), and are written one per line to a run's ``metrics.jsonl``. So they hold floats,
ints and strings only: never tensors.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"
    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_dir: str
    name: str
    arch: str
    parameters: int
    total_steps: int
    start_step: int
    device: str
    threads: int
    resumed: bool
    memory_estimate: str
    time_budget_s: float | None = None  # train.time_budget in seconds: training stops when elapsed_s reaches it


@dataclass(frozen=True)
class DataProgress(Event):
    kind: ClassVar[str] = "data_progress"
    stage: str  # scan, tokenizer, encode, download <file>
    done: int
    total: int


@dataclass(frozen=True)
class DataReady(Event):
    kind: ClassVar[str] = "data_ready"
    cache_hit: bool
    seconds: float
    vocab_size: int
    tokenizer: str
    train_tokens: int
    valid_tokens: int
    test_tokens: int
    encodings: tuple[str, ...]
    valid_characters: int = 0  # of the validation split's text, for bits per character (0: unknown)
    valid_bytes: int = 0  # ... and its UTF-8 bytes, for bits per byte


@dataclass(frozen=True)
class StepLogged(Event):
    kind: ClassVar[str] = "step"
    step: int  # optimizer steps completed
    total_steps: int
    loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float
    tokens_seen: int
    elapsed_s: float
    mfu: float | None = None  # model FLOPs utilisation, 0..1, against the measured peak (studio.core.training.mfu)


@dataclass(frozen=True)
class EvalLogged(Event):
    kind: ClassVar[str] = "eval"
    step: int
    loss: float
    perplexity: float
    best_loss: float
    is_best: bool
    tokens_seen: int
    elapsed_s: float
    sample: str = ""
    metrics: tuple[tuple[str, float], ...] = ()  # task metrics (accuracy, bleu, ...), percentages
    bits_per_char: float | None = None  # the loss over the split's characters (studio.core.bits); None for tasks
    bits_per_byte: float | None = None


@dataclass(frozen=True)
class MetricsReported(Event):
    """A task metric on a whole split, after training (best checkpoint)."""

    kind: ClassVar[str] = "metrics"
    split: str
    metrics: tuple[tuple[str, float], ...]
    examples: int
    seconds: float


@dataclass(frozen=True)
class CheckpointSaved(Event):
    kind: ClassVar[str] = "checkpoint"
    step: int
    path: str
    label: str  # "last", "best", or "snapshot" (weights only, for the Inspect page's time scrubber)


@dataclass(frozen=True)
class LayerStatsLogged(Event):
    """Each layer group's gradient norm (before clipping) and update-to-weight ratio at one step:
    what tells whether a learning rate is too high (ratios far above 1e-3) or too low."""

    kind: ClassVar[str] = "layer_stats"
    step: int
    layers: tuple[str, ...]  # "embeddings", "1", "2", ..., "output": the model's layer_groups(), input first
    grad_norms: tuple[float, ...]
    update_ratios: tuple[float, ...]  # |w after - w before| / |w before| of the optimizer step


@dataclass(frozen=True)
class RunPaused(Event):
    kind: ClassVar[str] = "paused"
    step: int


@dataclass(frozen=True)
class RunResumed(Event):
    kind: ClassVar[str] = "resumed"
    step: int


@dataclass(frozen=True)
class LogMessage(Event):
    kind: ClassVar[str] = "log"
    level: str  # info, warning
    text: str


@dataclass(frozen=True)
class RunFinished(Event):
    """The run ended without an error. ``status`` says how: it never claims more than happened."""

    kind: ClassVar[str] = "finished"
    status: str  # finished | stopped | early_stopped
    step: int
    best_loss: float
    elapsed_s: float
    reason: str = ""
    best_bits_per_char: float | None = None  # of the best validation loss (studio.core.bits)
    best_bits_per_byte: float | None = None


@dataclass(frozen=True)
class RunFailed(Event):
    kind: ClassVar[str] = "failed"
    step: int
    error: str  # for the user
    detail: str = ""  # the traceback, for the log
    checkpoint: str = ""  # where the last good state was saved, if it was


@dataclass(frozen=True)
class RunEnded(Event):
    """The last word of a ``studio worker`` process: how its run (or search) ended. Also made by
    a supervisor whose child died without saying it (status failed, the reason in ``error``)."""

    kind: ClassVar[str] = "run_ended"
    status: str  # finished | stopped | early_stopped | failed
    step: int
    best_loss: float | None
    run_dir: str  # "" when no run folder was made
    error: str = ""


@dataclass(frozen=True)
class TrialPruned(Event):
    """A search stopped this trial early: its value at ``step`` was worse than the pruner allows."""

    kind: ClassVar[str] = "trial_pruned"
    trial: int
    step: int
    value: float
    reference: float  # what it was compared with (the median of the other trials at that step)


@dataclass(frozen=True)
class TrialStarted(Event):
    kind: ClassVar[str] = "trial_started"
    trial: int
    trials: int
    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TrialFinished(Event):
    kind: ClassVar[str] = "trial_finished"
    trial: int
    status: str  # finished, pruned, stopped, failed
    value: float | None
    params: tuple[tuple[str, str], ...]
    run_dir: str
    steps: int
    seconds: float
    error: str = ""


@dataclass(frozen=True)
class SearchFinished(Event):
    kind: ClassVar[str] = "search_finished"
    folder: str
    best_trial: int  # -1 when no trial produced a value
    trials: int


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted, DataProgress, DataReady, StepLogged, EvalLogged, MetricsReported, CheckpointSaved, LayerStatsLogged,
        RunPaused, RunResumed, LogMessage, RunFinished, RunFailed, RunEnded, TrialStarted, TrialPruned, TrialFinished,
        SearchFinished,
    )
}


def _tuples(value: Any) -> Any:
    """JSON turns tuples into lists; events hold tuples (they are frozen)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


_FIELD_NAMES: dict[str, frozenset[str]] = {}


def _field_names(cls: type[Event]) -> frozenset[str]:
    # Once per class: dataclasses.fields() for every line was a third of reading a metrics file.
    names = _FIELD_NAMES.get(cls.kind)
    if names is None:
        names = _FIELD_NAMES[cls.kind] = frozenset(f.name for f in dataclasses.fields(cls))
    return names


def event_from_dict(data: dict[str, Any]) -> Event | None:
    """Rebuild an event from a metrics.jsonl line (unknown kinds and fields are ignored)."""
    cls = EVENT_TYPES.get(data.get("event", ""))
    if cls is None:
        return None
    names = _field_names(cls)
    values = {k: _tuples(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
    try:
        return cls(**values)
    except TypeError:
        return None

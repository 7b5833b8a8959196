"""What the pages edit together: the parts of one run configuration, and the built corpus.

The pages own their forms; the session only holds the latest valid value of each part and says
when something changed, so the Model page can recount parameters when the Data page builds a
vocabulary, and the Train page can enable Start when every part is valid.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from studio.core.config import (
    DataConfig,
    OptimizerConfig,
    RunConfig,
    RunSection,
    ScheduleConfig,
    TokenizerConfig,
    TrainConfig,
)
from studio.core.errors import ConfigError, ConfigIssue
from studio.core.paths import data_dir
from studio.core.settings import ModelConfig


class StudioSession(QObject):
    changed = Signal()
    prepared_changed = Signal(object)  # PreparedCorpus or None

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.data = DataConfig()
        self.tokenizer = TokenizerConfig()
        self.model: ModelConfig | None = None
        self.optimizer = OptimizerConfig()
        self.schedule = ScheduleConfig()
        self.train = TrainConfig()
        self.run = RunSection()
        self.issues: dict[str, list[ConfigIssue]] = {}  # per page
        self.prepared: Any = None  # PreparedCorpus of the current data settings, once built
        self.engine_ready = False

    def update(self, page: str, issues: list[ConfigIssue], **parts: Any) -> None:
        for name, value in parts.items():
            setattr(self, name, value)
        self.issues[page] = list(issues)
        self.changed.emit()

    def set_prepared(self, prepared: Any) -> None:
        self.prepared = prepared
        self.prepared_changed.emit(prepared)
        self.changed.emit()

    def vocab_size(self) -> tuple[int, bool]:
        """(vocabulary size, exact?) for parameter counts: exact once the data is built."""
        if self.prepared is not None:
            return self.prepared.tokenizer.vocab_size, True
        if self.tokenizer.kind == "char":
            return min(self.tokenizer.vocab_size, 100), False
        return self.tokenizer.vocab_size, False

    def blocking_reason(self) -> str:
        """Why training cannot start now, or '' when it can."""
        if not self.engine_ready:
            return "Loading PyTorch…"
        for page, issues in self.issues.items():
            if issues:
                return f"{page}: {issues[0]}"
        if self.model is None:
            return "Model: choose an architecture"
        for verdict in self.preflight():
            if verdict.level == "error":
                return verdict.message
        return ""

    def preflight(self) -> list[Any]:
        """The trainer's own pre-flight verdicts (memory, disk, folder) for the current settings,
        so Start is refused here for the same reasons the run would be. Needs the engine loaded."""
        if not self.engine_ready or self.model is None:
            return []
        from studio.core.architectures import estimate_training_memory
        from studio.core.paths import runs_dir
        from studio.core.training import preflight

        vocab, _ = self.vocab_size()
        try:
            estimate = estimate_training_memory(self.model, vocab, self.train.batch_size, self.model.context_length, self.optimizer.name)
        except (ValueError, ArithmeticError):
            return []
        device = "cuda" if self.run.device.startswith("cuda") else "cpu"
        if self.run.device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        folder = runs_dir()
        return [preflight.memory_verdict(estimate, device), preflight.disk_verdict(estimate.params, folder),
                preflight.folder_verdict(folder)]

    def preflight_warnings(self) -> str:
        return " ".join(v.message for v in self.preflight() if v.level == "warning")

    def run_config(self) -> RunConfig:
        if self.model is None:
            raise ConfigError("choose a model first")
        config = RunConfig(self.run, self.data, self.tokenizer, self.model, self.optimizer, self.schedule, self.train)
        issues = config.cross_check()
        if issues:
            raise ConfigError(issues)
        return config

    # ---- last choices, restored at the next launch ----------------------------------------

    @staticmethod
    def saved_path() -> Path:
        return data_dir() / "gui-session.toml"

    def save(self) -> None:
        if self.model is None:
            return
        try:
            self.run_config().save(self.saved_path())
        except ConfigError:
            pass

    @classmethod
    def saved_tables(cls) -> dict[str, Any]:
        """The last session's tables, read as plain TOML (no engine needed); {} if none or unreadable."""
        try:
            return tomllib.loads(cls.saved_path().read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            return {}

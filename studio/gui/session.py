"""What the pages edit together: the parts of one run configuration, and the built corpus.

The pages own their forms and hand the session their values as typed (one table per section).
The session builds the run's configuration from those tables in one ``RunConfig.from_dict`` call,
the same parser the CLI and TOML files go through, whenever a value changes (so Start can say
why it is refused) and again when Start is pressed. Its issues go back to the pages, which show
each at its field. Nothing is validated anywhere else on the way; the training process checks the
saved file once more, as a process boundary should.

Views that need one part while another is still wrong (the Model page's parameter count while
the data has a problem) read the latest valid value of that part: ``session.model``,
``session.train``, ...
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from studio.core.architectures import config_class
from studio.core.config import (
    SECTIONS,
    DataConfig,
    OptimizerConfig,
    RunConfig,
    RunSection,
    ScheduleConfig,
    TokenizerConfig,
    TrainConfig,
)
from studio.core.errors import ConfigError, ConfigIssue
from studio.core.i18n import N_, _
from studio.core.paths import data_dir
from studio.core.settings import ModelConfig, Section

# The page that shows each section, for the reason Start is refused ("Model: model.d_model=...").
PAGE_OF = {"data": N_("Data"), "tokenizer": N_("Data"), "model": N_("Model")}
RUN_SECTIONS = ("run", "data", "tokenizer", "model", "optimizer", "schedule", "train")


def build_run_config(tables: Mapping[str, Mapping[str, Any]], parse_issues: Iterable[ConfigIssue] = ()) -> RunConfig:
    """The run's configuration from the forms' tables, in one ``RunConfig.from_dict``. Raises
    ConfigError with every issue: the forms' own (text that is not a number) and the parser's."""
    issues = list(parse_issues)
    try:
        config = RunConfig.from_dict({name: dict(table) for name, table in tables.items()})
    except ConfigError as e:
        issues.extend(e.issues)
        raise ConfigError(issues) from None
    if issues:
        raise ConfigError(issues)
    return config


def _construct(section: str, table: Mapping[str, Any]) -> Section:
    """A section from a table the parser has already found valid (no second validation)."""
    if section == "model":
        values = dict(table)
        return config_class(values.pop("arch"))(**values)
    return SECTIONS[section](**table)


class StudioSession(QObject):
    changed = Signal()
    prepared_changed = Signal(object)  # PreparedCorpus or None

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.tables: dict[str, dict[str, Any]] = {}  # the forms' values, by section
        self._parse_issues: dict[str, list[ConfigIssue]] = {}  # by section: text that is not a number
        self.issues: list[ConfigIssue] = []  # everything wrong with the run as it stands
        self.config: RunConfig | None = None  # the run as Start would begin it, when it is valid
        self._valid: dict[str, Section] = {}  # the latest valid value of each section
        self.prepared: Any = None  # PreparedCorpus of the current data settings, once built
        self.engine_ready = False
        self._cached_vocab: dict[str, int | None] = {}  # by data and tokenizer settings

    # ---- the pages' values --------------------------------------------------------------------

    def set_tables(self, tables: Mapping[str, Mapping[str, Any]], parse_issues: Iterable[ConfigIssue] = ()) -> None:
        """A page's sections as its forms hold them, with the forms' own issues."""
        issues = list(parse_issues)
        for section, table in tables.items():
            self.tables[section] = dict(table)
            self._parse_issues[section] = [i for i in issues if i.key.startswith(section + ".")]
        self._validate()
        self.changed.emit()

    def _validate(self) -> None:
        parse_issues = [i for issues in self._parse_issues.values() for i in issues]
        tables = {name: self.tables[name] for name in RUN_SECTIONS if name in self.tables}
        try:
            self.config, self.issues = build_run_config(tables, parse_issues), []
        except ConfigError as e:
            self.config, self.issues = None, e.issues
        if "model" not in tables:
            self.config = None  # the Model page's form comes with the engine; until then, no run
        for name, table in tables.items():
            if self.config is not None:
                self._valid[name] = getattr(self.config, name)
            elif not any(i.key == name or i.key.startswith(name + ".") for i in self.issues):
                self._valid[name] = _construct(name, table)

    def issues_for(self, *sections: str) -> list[ConfigIssue]:
        return [i for i in self.issues if i.key.split(".")[0] in sections]

    def parse_issues(self, *sections: str) -> list[ConfigIssue]:
        """The forms' own issues (text that is not a number) in these sections."""
        return [i for name in sections for i in self._parse_issues.get(name, [])]

    # The latest valid value of each part (defaults until a page has given one).
    @property
    def data(self) -> DataConfig:
        return self._valid.get("data") or DataConfig()  # type: ignore[return-value]

    @property
    def tokenizer(self) -> TokenizerConfig:
        return self._valid.get("tokenizer") or TokenizerConfig()  # type: ignore[return-value]

    @property
    def model(self) -> ModelConfig | None:
        return self._valid.get("model")  # type: ignore[return-value]

    @property
    def optimizer(self) -> OptimizerConfig:
        return self._valid.get("optimizer") or OptimizerConfig()  # type: ignore[return-value]

    @property
    def schedule(self) -> ScheduleConfig:
        return self._valid.get("schedule") or ScheduleConfig()  # type: ignore[return-value]

    @property
    def train(self) -> TrainConfig:
        return self._valid.get("train") or TrainConfig()  # type: ignore[return-value]

    @property
    def run(self) -> RunSection:
        return self._valid.get("run") or RunSection()  # type: ignore[return-value]

    def set_prepared(self, prepared: Any) -> None:
        self.prepared = prepared
        self.prepared_changed.emit(prepared)
        self.changed.emit()

    def vocab_size(self) -> tuple[int, bool]:
        """(vocabulary size, exact?) for parameter counts: exact once the data is built."""
        if self.prepared is not None:
            return self.prepared.tokenizer.vocab_size, True
        cached = self.cached_vocab_size()
        if cached is not None:
            return cached, True
        if self.tokenizer.kind == "char":
            return min(self.tokenizer.vocab_size, 100), False
        return self.tokenizer.vocab_size, False

    def cached_vocab_size(self) -> int | None:
        """The vocabulary of the token cache these data and tokenizer settings were built into
        before (after a relaunch nothing is built yet, and a guess of 100 characters made an LSTM
        count 118,628 parameters where the run had 668,678). A few file stats and one small JSON
        read, remembered per settings, so typing in the Model form does not repeat it."""
        if not self.engine_ready:
            return None
        key = repr((self.data, self.tokenizer))
        if key not in self._cached_vocab:
            from studio.core.data.prepare import cached_corpus  # the engine is loaded by now

            corpus = cached_corpus(self.data, self.tokenizer)
            self._cached_vocab[key] = corpus.tokenizer.vocab_size if corpus is not None else None
        return self._cached_vocab[key]

    def blocking_reason(self) -> str:
        """Why training cannot start now, or '' when it can."""
        if not self.engine_ready:
            return _("Loading PyTorch…")
        if "model" not in self.tables:
            return _("Model: choose an architecture")
        if self.issues:
            first = self.issues[0]
            # Translators: why Start is refused: the page to fix it on, then the engine's message.
            return _("{page}: {issue}").format(page=_(PAGE_OF.get(first.key.split(".")[0], N_("Train"))), issue=first)
        for verdict in self.preflight():
            if verdict.level == "error":
                return verdict.message
        return ""

    def preflight(self) -> list[Any]:
        """The trainer's own pre-flight verdicts (memory, disk, folder) for the current settings,
        so Start is refused here for the same reasons the run would be. Needs the engine loaded."""
        config = self.config
        if not self.engine_ready or config is None:
            return []
        from studio.core.architectures import estimate_training_memory
        from studio.core.paths import runs_dir
        from studio.core.training import preflight

        vocab, _ = self.vocab_size()
        try:
            estimate = estimate_training_memory(config.model, vocab, config.train.batch_size, config.model.context_length,
                                                config.optimizer.name)
        except (ValueError, ArithmeticError):
            return []
        device = "cuda" if config.run.device.startswith("cuda") else "cpu"
        if config.run.device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        folder = runs_dir()
        return [preflight.memory_verdict(estimate, device), preflight.disk_verdict(estimate.params, folder),
                preflight.folder_verdict(folder)]

    def preflight_warnings(self) -> str:
        return " ".join(v.message for v in self.preflight() if v.level == "warning")

    def run_config(self) -> RunConfig:
        """The run Start begins: built from the forms' tables now, in the one parser call."""
        if "model" not in self.tables:
            raise ConfigError(_("choose a model first"))
        parse_issues = [i for issues in self._parse_issues.values() for i in issues]
        return build_run_config({name: self.tables[name] for name in RUN_SECTIONS if name in self.tables}, parse_issues)

    # ---- last choices, restored at the next launch ----------------------------------------

    @staticmethod
    def saved_path() -> Path:
        return data_dir() / "gui-session.toml"

    def save(self) -> None:
        """The latest valid value of every part, so a field left half-typed loses only itself."""
        if self.model is None:
            return
        config = RunConfig(self.run, self.data, self.tokenizer, self.model, self.optimizer, self.schedule, self.train)
        config.save(self.saved_path())

    @classmethod
    def saved_tables(cls) -> dict[str, Any]:
        """The last session's tables, read as plain TOML (no engine needed); {} if none or unreadable."""
        try:
            return tomllib.loads(cls.saved_path().read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            return {}

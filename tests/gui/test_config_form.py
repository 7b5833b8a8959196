"""Forms generated from the config metadata: labels, choices from data, settings that apply only
with another's value, path lists with their dialogs, object names; and the window building a
run's configuration once, from the forms' values, when Start is pressed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QLineEdit, QSpinBox

from studio.core.config import DataConfig, FinetuneConfig, RunConfig, TaskConfig, TokenizerConfig, TrainConfig
from studio.gui.main_window import MainWindow
from studio.gui.widgets.config_form import ChoiceCombo, ConfigForm, PathChoiceEdit, PathListEdit
from tests.gui.test_training_flow import click


def test_choices_show_labels_and_hold_values(qtbot) -> None:
    form = ConfigForm(TokenizerConfig)
    qtbot.addWidget(form)
    kind = form.editors["kind"]
    assert isinstance(kind, ChoiceCombo) and not kind.isEditable()
    assert [kind.itemText(i) for i in range(kind.count())] == ["Character", "Word (spaCy)", "Subword (BPE)"]
    form.set_values({"kind": "bpe"})
    assert kind.currentText() == "Subword (BPE)" and form.raw_values()[0]["kind"] == "bpe"
    language = form.editors["language"]
    assert isinstance(language, ChoiceCombo) and language.isEditable()  # suggestions, and any spaCy code
    assert isinstance(form.editors["vocab_size"], QSpinBox) and form.editors["vocab_size"].singleStep() == 1000


def test_a_setting_that_does_not_apply_is_hidden_and_gives_its_default(qtbot) -> None:
    form = ConfigForm(FinetuneConfig, {"method": "full", "lora_rank": 32, "freeze_layers": 2})
    qtbot.addWidget(form)
    form.show()
    assert not form.is_shown("lora_rank") and not form.editors["lora_rank"].isVisible()
    assert not form.is_shown("freeze_layers")
    values, _ = form.raw_values()
    assert values["lora_rank"] == 8 and values["freeze_layers"] == 0  # the defaults: they do not apply
    edited = []
    form.field_changed.connect(edited.append)
    method = form.editors["method"]
    method.setCurrentIndex(method.findData("lora"))
    assert edited == ["method"]
    assert form.is_shown("lora_rank") and form.editors["lora_rank"].isVisible() and not form.is_shown("freeze_layers")
    assert form.raw_values()[0]["lora_rank"] == 32  # what was typed comes back when it applies


def test_conditions_can_read_a_value_the_page_resolves(qtbot) -> None:
    form = ConfigForm(DataConfig, {"format": "auto"})
    qtbot.addWidget(form)
    assert not form.is_shown("column") and not form.is_shown("json_field")  # auto, and no page to say more
    form.set_context(format="csv")  # the page read the file extension
    assert form.is_shown("column") and not form.is_shown("json_field")
    form.set_context(format="jsonl")
    assert form.is_shown("json_field") and not form.is_shown("column")


def test_choices_from_data_fixed_or_free(qtbot) -> None:
    form = ConfigForm(DataConfig, choices={"dataset": [("", "Files"), ("demo", "Demo stories")]})
    qtbot.addWidget(form)
    dataset, column = form.editors["dataset"], form.editors["column"]
    assert isinstance(dataset, ChoiceCombo) and not dataset.isEditable()  # free_text=False: only what exists
    assert isinstance(column, ChoiceCombo) and column.isEditable()
    assert dataset.currentText() == "Demo stories" and form.value("dataset") == "demo"
    form.set_choices("column", ["id", "review"])
    assert form.value("column") == "text"  # kept: a JSONL file's later rows may have it
    column.setCurrentIndex(1)
    assert form.value("column") == "review"
    column.setEditText("body")
    assert form.value("column") == "body"


def test_path_lists_open_files_and_folders(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = ConfigForm(DataConfig)
    task = ConfigForm(TaskConfig, {"kind": "classify"})
    for form in (data, task):
        qtbot.addWidget(form)
        form.show()
    paths = data.editors["paths"]
    assert isinstance(paths, PathListEdit) and paths.objectName() == "field_data_paths"
    assert paths.folder_button.isVisible() and paths.files_button.objectName() == "field_data_paths_open_files"
    assert not task.editors["paths"].folder_button.isVisible()  # examples are files
    asked = []

    def open_names(parent: object, title: str, start: str, filters: str) -> tuple[list[str], str]:
        asked.append(filters)
        return [str(tmp_path / "a.txt"), str(tmp_path / "b.csv")], ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(open_names))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a: str(tmp_path)))
    edited = []
    data.field_changed.connect(edited.append)
    click(qtbot, paths.files_button)
    assert data.value("paths") == [str(tmp_path / "a.txt"), str(tmp_path / "b.csv")] and edited == ["paths"]
    assert "*.csv" in asked[0] and "*.jsonl" in asked[0]
    click(qtbot, paths.folder_button)
    assert data.value("paths") == [str(tmp_path)]
    paths.line_edit.setText("x.txt; y.txt")
    paths.line_edit.editingFinished.emit()
    assert data.raw_values()[0]["paths"] == ["x.txt", "y.txt"] and edited == ["paths"] * 3


def test_a_folder_setting_offers_runs_and_browse(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    form = ConfigForm(FinetuneConfig, fields=("base", "base_checkpoint"))
    qtbot.addWidget(form)
    base = form.editors["base"]
    assert isinstance(base, PathChoiceEdit) and base.browse_button.objectName() == "field_finetune_base_browse"
    form.set_choices("base", [(str(tmp_path / "run-1"), "run 1 (gpt)")])
    form.set_values({"base": str(tmp_path / "run-1")})
    assert base.combo.currentText() == "run 1 (gpt)" and form.value("base") == str(tmp_path / "run-1")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a: str(tmp_path / "other")))
    click(qtbot, base.browse_button)
    assert form.value("base") == str(tmp_path / "other")


def test_text_that_is_not_a_number_is_the_forms_only_issue(qtbot) -> None:
    form = ConfigForm(TrainConfig, name_prefix="finetune")
    qtbot.addWidget(form)
    assert form.objectName() == "finetuneTrainForm" and form.editors["lr"].objectName() == "finetune_field_train_lr"
    lr = form.editors["lr"]
    assert isinstance(lr, QLineEdit)
    lr.setText("fast")
    values, issues = form.raw_values()
    assert "lr" not in values and [str(i) for i in issues] == ["train.lr: 'fast' is not a number"]
    lr.setText("20")  # out of range, but that is the parser's to say, not the form's
    assert form.raw_values() == ({**form.raw_values()[0], "lr": 20.0}, [])


def test_start_builds_the_run_once_from_the_forms(qtbot, window: MainWindow, tiny_corpus: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The learning rate is checked by the parser alone: its issue reaches the field and Start's
    reason, and pressing Start builds the configuration with a single RunConfig.from_dict."""
    window.data_page.set_paths([str(tiny_corpus)])
    window.model_page.set_architecture("gpt")
    window.model_page.form.set_values({"n_layers": 1, "n_heads": 2, "d_model": 32, "context_length": 32})
    page = window.train_page
    page.forms["train"].editors["lr"].setText("20")
    error = window.findChild(type(page.forms["train"].error_labels["lr"]), "error_train_lr")
    assert error.isVisibleTo(page) and "above the maximum 10" in error.text()
    assert not page.monitor.start_button.isEnabled()
    assert page.monitor.blocked_label.text() == "Cannot start: Train: train.lr: train.lr=20.0 is above the maximum 10"
    page.forms["train"].editors["lr"].setText("0.002")
    assert page.monitor.start_button.isEnabled(), page.monitor.blocked_label.text()
    assert not error.isVisibleTo(page)

    calls, started = [], []
    real = RunConfig.from_dict.__func__  # type: ignore[attr-defined]

    def counting(cls: type[RunConfig], *args: object, **kwargs: object) -> RunConfig:
        calls.append(1)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(RunConfig, "from_dict", classmethod(counting))
    monkeypatch.setattr(page.monitor, "start", started.append)
    click(qtbot, page.monitor.start_button)
    assert len(calls) == 1 and len(started) == 1
    config = started[0]
    assert config.train.lr == 0.002 and config.data.paths == [str(tiny_corpus)] and config.model.d_model == 32

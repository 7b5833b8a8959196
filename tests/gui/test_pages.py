"""Data and Model page details, and what the window remembers between launches."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from studio.gui.main_window import MainWindow, about_text
from tests.gui.test_training_flow import click


def test_csv_column_and_jsonl_field_are_chosen_from_the_file(qtbot, window: MainWindow, tmp_path: Path) -> None:
    page = window.data_page
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text("id,review,stars\n" + "".join(f'{i},"a fine review number {i}",5\n' for i in range(60)))
    page.set_paths([str(csv_path)])
    column = page.corpus_form.editors["column"]
    columns = [column.itemText(i) for i in range(column.count())]
    assert columns == ["id", "review", "stars"]
    column.setCurrentText("review")
    assert page.raw_preview.toPlainText().startswith("a fine review number 0")
    assert page.corpus_form.is_shown("column") and not page.corpus_form.is_shown("json_field")
    with qtbot.waitSignal(page.corpus_built, timeout=60_000):
        click(qtbot, page.build_button)
    assert window.session.data.column == "review"
    assert page.stats_table.item(1, 1).text() == "54"  # 60 rows shuffled 90/10

    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "body": f"text {i}"}) + "\n" for i in range(5)))
    page.set_paths([str(jsonl)])
    assert page.corpus_form.is_shown("json_field") and not page.corpus_form.is_shown("column")
    page.corpus_form.editors["json_field"].setCurrentText("body")
    assert page.raw_preview.toPlainText().startswith("text 0")
    assert window.session.data.json_field == "body"


def test_bad_file_shows_a_message_not_a_traceback(qtbot, window: MainWindow, tmp_path: Path) -> None:
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 10)
    window.data_page.set_paths([str(binary)])
    assert "looks like a binary file" in window.data_page.status_label.text()
    assert "weights.bin" in window.data_page.status_label.text()


def test_drop_files_onto_the_data_page(qtbot, window: MainWindow, tiny_corpus: Path) -> None:
    page = window.data_page
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tiny_corpus))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    page.dropEvent(event)
    assert page.paths() == [str(tiny_corpus)]
    assert page.raw_preview.toPlainText().startswith("One morning")


def test_build_can_be_cancelled(qtbot, window: MainWindow, shared_data: Path) -> None:
    page = window.data_page
    page.set_paths([str(shared_data / "lm" / "tinyshakespeare" / "input.txt")])
    kind = page.tokenizer_form.editors["kind"]
    kind.setCurrentIndex(kind.findData("word"))  # spaCy: slow enough to cancel
    with qtbot.waitSignal(page.build.progress, timeout=60_000):
        click(qtbot, page.build_button)
    assert page.cancel_button.isEnabled()
    with qtbot.waitSignal(page.build.cancelled, timeout=60_000):
        click(qtbot, page.cancel_button)
    qtbot.waitUntil(lambda: not page.build.running, timeout=10_000)
    assert page.status_label.text() == "Build cancelled."
    assert window.session.prepared is None
    assert page.build_button.isEnabled()


def test_parameter_count_updates_live(qtbot, window: MainWindow) -> None:
    page = window.model_page
    page.set_architecture("gpt")
    page.preset_combo.setCurrentText("tiny")
    tiny = page.param_label.text()
    page.form.set_values({"n_layers": 6})
    assert page.param_label.text() != tiny
    assert page.preset_combo.currentText() == "custom"
    page.set_architecture("lstm")
    assert "LSTM settings" in page.form_box.title()
    assert "MiB" in page.memory_label.text() or "KiB" in page.memory_label.text()


def test_switching_architecture_keeps_what_was_set_and_takes_the_new_defaults(qtbot, window: MainWindow) -> None:
    """The GPT's defaults (RMSNorm, QK-norm, ReLU²) are not the encoder's: a switch used to carry
    every shared value over, so a BERT chosen after the default GPT came out with the GPT's layers."""
    page = window.model_page
    page.set_architecture("gpt")
    page.form.set_values({"context_length": 96})
    page.set_architecture("bert")
    values = page.form.raw_values()[0]
    assert (values["norm"], values["qk_norm"], values["activation"]) == ("layer", False, "gelu")
    assert values["context_length"] == 96  # what the person set is kept
    page.set_architecture("gpt")
    values = page.form.raw_values()[0]
    assert (values["norm"], values["qk_norm"], values["activation"], values["positions"]) == ("rms", True, "relu2", "rotary")


def test_choices_and_layout_survive_a_restart(qtbot, window: MainWindow, tmp_path: Path, tiny_corpus: Path) -> None:
    window.data_page.set_paths([str(tiny_corpus)])
    kind = window.data_page.tokenizer_form.editors["kind"]
    kind.setCurrentIndex(kind.findData("bpe"))
    window.model_page.set_architecture("gru")
    window.model_page.form.set_values({"hidden_size": 96, "embedding_dim": 96})
    window.train_page.forms["train"].set_values({"lr": 0.002, "steps": 123})
    window.nav.setCurrentRow(1)
    settings_path = Path(window.settings.fileName())
    window.close()

    again = MainWindow(settings_path=settings_path)
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.engine_loaded, timeout=60_000):
        again.load_engine()
    assert again.nav.currentRow() == 1
    assert again.data_page.paths() == [str(tiny_corpus)]
    assert again.data_page.tokenizer_form.editors["kind"].currentData() == "bpe"
    assert again.model_page.arch_combo.currentData() == "gru"
    assert again.session.model.hidden_size == 96
    assert again.session.train.lr == 0.002 and again.session.train.steps == 123
    again.close()


def test_about_lists_versions() -> None:
    text = about_text()
    assert "PyTorch" in text and "Qt" in text and "spaCy" in text

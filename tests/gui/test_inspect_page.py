"""The Inspect page on real tiny runs: every view for a GPT, a BERT, an encoder-decoder and an
LSTM, the time scrubber moving through the run's snapshots, and an export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.training.trainer import Trainer
from studio.gui.main_window import MainWindow
from tests.core.test_models import tiny_config
from tests.gui.test_training_flow import click


def trained(arch: str, corpus: Path, name: str, *extra: str) -> Path:
    config = tiny_config(arch, corpus, "train.steps=12", "train.eval_interval=4", "train.sample_tokens=0",
                         "train.layer_stats_interval=2", "train.snapshots=3", f"run.name={name}", *extra)
    result = Trainer(config).fit()
    assert result.status == "finished"
    return result.run_dir


def enabled_views(page) -> set[str]:  # noqa: ANN001 - the InspectPage
    return {key for key, widget in page.view_pages.items() if page.tabs.isTabEnabled(page.tabs.indexOf(widget))}


@pytest.mark.parametrize("arch", ["gpt", "bert", "seq2seq", "lstm"])
def test_every_view_of_a_tiny_model_and_the_time_scrubber(qtbot, window: MainWindow, tiny_corpus: Path, arch: str, tmp_path: Path) -> None:
    run = trained(arch, tiny_corpus, f"inspect-{arch}")
    window.show_page("Inspect")
    page = window.inspect_page
    page.text_edit.setPlainText("The cat sat by the river")
    with qtbot.waitSignal(page.inspected, timeout=60_000):
        page.set_run(run)
    assert page.result is not None and not page.result.errors, page.status.text()
    # Three snapshots kept (steps 4, 8, 12) and best/last share their steps: three moments.
    assert [p.step for p in page.points] == [4, 8, 12] and page.slider.value() == 2
    views = enabled_views(page)
    expected = {"tokens", "embeddings", "layers"} | ({"recurrent"} if arch == "lstm" else {"attention"})
    assert views == expected

    # Text and probabilities: every token coloured, a bar per candidate at the chosen position.
    p = page.result.predictions
    assert p is not None and len(p.surprisal.bits) == len(p.reading.tokens) > 0
    assert page.surprisal_view.toPlainText().replace("↵", "\n").replace("·", " ")  # the text is shown
    page.position_spin.setValue(2)
    bars = [i for i in page.next_plot.getPlotItem().items if type(i).__name__ == "BarGraphItem"]
    assert len(bars) == 1 and "Position 2" in page.next_plot.getPlotItem().titleLabel.text
    # Each view is drawn when its tab is opened.
    if arch == "lstm":
        page.tabs.setCurrentWidget(page.view_pages["recurrent"])
        assert page.gate_layer_combo.count() == 2  # the tiny LSTM's two layers
        assert page.gate_plot.listDataItems() and page.norm_plot.listDataItems()
    else:
        page.tabs.setCurrentWidget(page.view_pages["attention"])
        assert page.attention_combo.count() >= 1 and page.head_combo.count() >= 2  # the average, then each head
        m, w = page.attention_matrix()
        assert w.shape == (len(m.queries), len(m.keys))
        page.select_query(1)
        assert page.row_plot.listDataItems() or page.row_plot.getPlotItem().items
    if arch == "seq2seq":
        kinds = {page.attention_combo.itemText(i) for i in range(page.attention_combo.count())}
        assert any("cross" in k for k in kinds)
    # Embeddings: the map, and a search that finds a token and its neighbours.
    page.tabs.setCurrentWidget(page.view_pages["embeddings"])
    assert len(page.embedding_points.data) > 0
    page.search_edit.setText("t")
    assert page.neighbour_list.count() > 0
    # Layer statistics: one curve per layer group in both plots.
    page.tabs.setCurrentWidget(page.view_pages["layers"])
    assert len(page.grad_plot.listDataItems()) == len(page.result.layers.layers) >= 3

    # The scrubber: the first snapshot is another model (its embeddings differ).
    page.tabs.setCurrentWidget(page.view_pages["embeddings"])
    before = page.result.embedding_map.coords.clone()
    with qtbot.waitSignal(page.inspected, timeout=60_000):
        page.slider.setValue(0)
    assert "step 4" in page.point_label.text()
    assert [line.value() for line in page.step_lines] == [4, 4]  # the training curves mark the moment shown
    assert not (page.result.embedding_map.coords - before).abs().max() < 1e-6
    assert page.embedding_points.data["x"].tolist() == page.result.embedding_map.coords[page.result.embedding_map.special:, 0].tolist()

    # Export: this view as PNG, and its data as JSON.
    page.tabs.setCurrentWidget(page.view_pages["tokens"])
    assert page.export_png(tmp_path / "view.png") and (tmp_path / "view.png").stat().st_size > 1000
    with qtbot.waitSignal(page.exported, timeout=30_000):
        page.export_data(tmp_path / "view.json")
    rows = json.loads((tmp_path / "view.json").read_text(encoding="utf-8"))
    assert len(rows) == len(page.result.predictions.positions) and "surprisal_bits" in rows[0]


def test_the_runs_page_opens_a_run_in_inspect(qtbot, window: MainWindow, tiny_corpus: Path) -> None:
    run = trained("gpt", tiny_corpus, "from-runs")
    window.show_page("Runs")
    runs = window.runs_page
    runs.refresh()
    runs.select_paths([str(run)])
    page = window.inspect_page
    with qtbot.waitSignal(page.inspected, timeout=60_000):
        click(qtbot, runs.action_buttons["inspect"])
    assert window.stack.currentWidget() is page and page.run == run


def test_following_a_training_run_moves_to_each_new_snapshot(qtbot, window: MainWindow, tiny_corpus: Path) -> None:
    """"Follow the run" on, then a run started on the Train page: the page takes the run and, as
    the training process saves a snapshot at each evaluation, moves to the newest one."""
    from tests.gui.test_training_flow import choose_model, load_corpus_and_build

    page = window.inspect_page
    page.follow_check.setChecked(True)
    page.follow_timer.setInterval(200)  # look often: the run is short
    page.text_edit.setPlainText("One morning")
    load_corpus_and_build(qtbot, window, tiny_corpus)
    choose_model(qtbot, window, "gpt")
    train = window.train_page
    window.nav.setCurrentRow(2)
    train.forms["train"].set_values({"steps": 100_000, "batch_size": 8, "eval_interval": 5, "eval_batches": 1, "sample_tokens": 0})
    click(qtbot, train.monitor.start_button)
    qtbot.waitUntil(lambda: page.run is not None and len(page.points) >= 3, timeout=120_000)
    assert page.run == Path(train.monitor.run_dir)
    qtbot.waitUntil(lambda: page.result is not None and page.slider.value() == len(page.points) - 1, timeout=60_000)
    shown = page.points[page.slider.value()].step
    with qtbot.waitSignal(train.monitor.run_ended, timeout=60_000):
        click(qtbot, train.monitor.stop_button)
    qtbot.waitUntil(lambda: page.points[-1].step > shown and page.slider.value() == len(page.points) - 1, timeout=30_000)


def test_a_checkpoint_folder_of_its_own_is_one_moment(qtbot, window: MainWindow, tiny_corpus: Path, tmp_path: Path) -> None:
    """A checkpoint copied out of its run (Browse… takes any folder) is inspected as it is."""
    import shutil

    run = trained("gru", tiny_corpus, "a-gru")
    alone = tmp_path / "elsewhere" / "best"
    shutil.copytree(run / "checkpoints" / "best", alone)
    page = window.inspect_page
    window.show_page("Inspect")
    page.text_edit.setPlainText("The cat")
    with qtbot.waitSignal(page.inspected, timeout=60_000):
        page.set_run(alone)
    assert [p.label for p in page.points] == ["checkpoint"] and not page.slider.isEnabled()
    assert page.result is not None and page.result.recurrent is not None and not page.result.errors
    assert "reset" in page.result.recurrent.layers[0].gates  # a GRU's gates


def test_newer_weights_in_the_same_checkpoint_folder_are_loaded_again(tiny_corpus: Path, tmp_path: Path) -> None:
    """``checkpoints/last`` keeps its name as a run trains on: the page must not keep showing the
    weights it loaded first from there."""
    import shutil
    import time

    from studio.gui.workers.inspect_worker import InsightCache

    first, second = trained("gpt", tiny_corpus, "one"), trained("gpt", tiny_corpus, "two", "train.seed=7")
    folder = tmp_path / "last"
    shutil.copytree(first / "checkpoints" / "last", folder)
    cache = InsightCache()
    before = cache.get(folder).embeddings().clone()
    assert cache.get(folder).embeddings().equal(before)  # unchanged: from the cache
    time.sleep(0.01)
    shutil.rmtree(folder)
    shutil.copytree(second / "checkpoints" / "last", folder)
    (folder / "commit.json").touch()  # a new save writes its commit record anew
    assert not cache.get(folder).embeddings().equal(before)

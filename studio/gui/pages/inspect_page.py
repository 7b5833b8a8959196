"""Inspect page: inside the person's own model, at any saved moment of its run.

A run and a text; a time scrubber over the run's saved checkpoints (snapshots spread over the run,
``best`` and ``last``), which every view follows; and the views: the text coloured by surprisal
with the next-token probabilities at a chosen position, attention per layer and head, the hidden
states and gates of a recurrent model, the token embeddings' 2-D map, and per-layer training
statistics. Each view explains itself in two or three sentences and exports as PNG and as data.

Every computation runs in ``InspectJob`` (``studio.core.inference.insight``); the page lays out
and draws. While a run trains, "Follow the run" looks for new snapshots every few seconds and
moves to the newest.
"""

from __future__ import annotations

import html
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.core.decoding.options import DecodingSettings
from studio.core.fileio import atomic_write_text, describe_os_error
from studio.core.i18n import N_, _, ngettext
from studio.gui.formatting import number
from studio.gui.widgets.layout import wrapping_label
from studio.gui.widgets.metrics_plots import locale_axes
from studio.gui.workers.inspect_worker import InspectJob, InspectRequest, InspectResult

# Each view: its tab title and its explanation (shown beside it, through the catalog).
VIEWS: dict[str, tuple[str, str]] = {
    "tokens": (N_("Text and probabilities"), N_(
        "Each token of your text is coloured by its surprisal, −log₂ p: how many bits of surprise the model "
        "felt when it reached that token (white: expected; red: a surprise). Click a token to see, on the "
        "right, what the model thought could come there, with the temperature and top-p applied as "
        "sampling would see them.")),
    "attention": (N_("Attention"), N_(
        "Each row is one token of the text, and each row sums to 1: how much every other token contributes "
        "to it in this layer and head. A decoder's tokens look only backwards (the upper right stays empty). "
        "Click a row to see where that token looks.")),
    "recurrent": (N_("States and gates"), N_(
        "A recurrent model carries a state from token to token. The lines show the length of that state "
        "and each gate's mean opening (0: closed, 1: open) at every token: an LSTM's forget gate near 1 "
        "keeps its memory, its input gate lets the new token in.")),
    "embeddings": (N_("Embeddings"), N_(
        "Every token's vector, flattened onto the two directions along which the vectors differ most (PCA). "
        "Tokens that the model uses alike end up close together. Search for a token to see its nearest "
        "neighbours by cosine similarity; Play moves through the run's checkpoints, so you can watch the "
        "vectors organise themselves.")),
    "layers": (N_("Training dynamics"), N_(
        "Per layer, over the run: the gradient's norm before clipping, and the size of each optimizer "
        "step relative to the weights. An update-to-weight ratio far above 0.001 (1e-3) suggests the "
        "learning rate is too high; far below, too low.")),
}
VIEW_NAMES = {"tokens": "surprisalView", "attention": "attentionView", "recurrent": "gateView",
              "embeddings": "embeddingView", "layers": "layerStatsView"}
# Translators: the kinds of saved checkpoints the time scrubber moves through.
POINT_LABELS = {"snapshot": N_("snapshot"), "best": N_("best"), "last": N_("last"), "checkpoint": N_("checkpoint")}
FOLLOW_MS = 3000  # how often "Follow the run" looks for a new snapshot
PLAY_MS = 700  # one checkpoint per this many milliseconds when Play animates the embeddings
MAX_BITS = 12.0  # surprisal at which the colour is fully red
COLOURS = ["#1f5fa8", "#d35400", "#27ae60", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#f39c12"]


def _plot(name: str, title: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(title=title, axisItems=locale_axes())
    plot.setObjectName(name)
    plot.setBackground("w")
    return plot


def shown_token(text: str) -> str:
    """A token as a label: a space, a line break or nothing would be invisible on an axis."""
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "·"


def surprisal_colour(bits: float) -> str:
    """White for an expected token, deepening to red for a surprise (MAX_BITS and above)."""
    share = 0.0 if not math.isfinite(bits) else min(1.0, max(0.0, bits / MAX_BITS))
    g = int(255 - 175 * share)
    return f"#ff{g:02x}{g:02x}" if share > 0 else "#ffffff"


class InspectPage(QWidget):
    inspected = Signal()  # every view has drawn the latest answer (what tests wait for)
    exported = Signal(str)  # a message once a data export is written

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("inspectPage")
        self.job = InspectJob(self)
        self.job.done.connect(self._on_result)
        self.exported.connect(lambda text: self.status.setText(text))
        self.result: InspectResult | None = None
        self.points: list[Any] = []  # TimePoint, by step
        self.run: Path | None = None
        self._token = 0
        self._position = 0  # the text position whose next-token probabilities are shown
        self._previous_map: Any = None  # the last embedding map's coordinates, so the animation keeps its axes
        # Views drawn when shown: a refresh draws the current tab only (all five took 80-120 ms of
        # the GUI thread together), the others when their tab is opened.
        self._stale: set[str] = set()
        self._layers_drawn: tuple[Any, int] | None = None  # (run, records): the training curves change only as the run trains
        self._build()
        self.follow_timer = QTimer(self, interval=FOLLOW_MS)
        self.follow_timer.timeout.connect(self._look_for_new_points)
        self.play_timer = QTimer(self, interval=PLAY_MS)
        self.play_timer.timeout.connect(self._play_step)
        self._connect()

    # ---- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        self.run_combo = QComboBox(objectName="inspectRunCombo")
        self.run_combo.setMinimumContentsLength(28)
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.refresh_button = QPushButton(_("Refresh"), objectName="inspectRefreshButton")
        self.browse_button = QPushButton(_("Browse…"), objectName="inspectBrowseButton")
        self.browse_button.setToolTip(_("Inspect a run folder or a checkpoint folder from anywhere"))
        self.follow_check = QCheckBox(_("Follow the run"), objectName="inspectFollowCheck")
        self.follow_check.setToolTip(_("While the run trains, move to each new snapshot as it is saved"))
        self.slider = QSlider(Qt.Orientation.Horizontal, objectName="checkpointSlider")
        self.slider.setToolTip(_("The run's saved checkpoints, from the first to the latest: every view follows"))
        self.point_label = QLabel(objectName="checkpointLabel")
        self.text_edit = QPlainTextEdit(objectName="inspectTextEdit")
        self.text_edit.setPlaceholderText(_("Type or paste any text to see how the model reads it."))
        self.text_edit.setMaximumHeight(70)
        self.temperature_spin = QDoubleSpinBox(objectName="inspectTemperatureSpin", minimum=0.05, maximum=5.0, singleStep=0.1, value=1.0)
        self.top_p_spin = QDoubleSpinBox(objectName="inspectTopPSpin", minimum=0.05, maximum=1.0, singleStep=0.05, value=1.0)
        self.top_k_spin = QSpinBox(objectName="inspectTopKSpin", minimum=1, maximum=50, value=10)
        self.inspect_button = QPushButton(_("Inspect"), objectName="inspectButton")
        self.png_button = QPushButton(_("Export PNG…"), objectName="inspectExportPngButton")
        self.data_button = QPushButton(_("Export data…"), objectName="inspectExportDataButton")
        self.data_button.setToolTip(_("This view's numbers as CSV or JSON"))
        self.status = wrapping_label("", "inspectStatusLabel")

        top = QGridLayout()
        top.addWidget(QLabel(_("Run")), 0, 0)
        top.addWidget(self.run_combo, 0, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.browse_button)
        top.addLayout(buttons, 0, 2)
        top.addWidget(self.follow_check, 0, 3)
        top.addWidget(QLabel(_("Checkpoint")), 1, 0)
        top.addWidget(self.slider, 1, 1)
        top.addWidget(self.point_label, 1, 2, 1, 2)
        top.addWidget(QLabel(_("Text")), 2, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.text_edit, 2, 1, 1, 3)
        settings = QHBoxLayout()
        for label, widget in ((_("Temperature"), self.temperature_spin), (_("Top-p"), self.top_p_spin), (_("Candidates"), self.top_k_spin)):
            settings.addWidget(QLabel(label))
            settings.addWidget(widget)
        settings.addStretch(1)
        for button in (self.inspect_button, self.png_button, self.data_button):
            settings.addWidget(button)
        top.addLayout(settings, 3, 1, 1, 3)
        top.setColumnStretch(1, 1)

        self.tabs = QTabWidget(objectName="inspectViewTabs")
        self.view_pages: dict[str, QWidget] = {}
        self.explanations: dict[str, QLabel] = {}
        builders = {"tokens": self._build_tokens, "attention": self._build_attention, "recurrent": self._build_gates,
                    "embeddings": self._build_embeddings, "layers": self._build_layers}
        for key, build in builders.items():
            page = QWidget(objectName=VIEW_NAMES[key])
            col = QVBoxLayout(page)
            explanation = wrapping_label(_(VIEWS[key][1]), f"{VIEW_NAMES[key]}Explanation")
            explanation.setStyleSheet("color: #555;")
            self.explanations[key] = explanation
            col.addWidget(explanation)
            col.addWidget(build(), 1)
            self.view_pages[key] = page
            self.tabs.addTab(page, _(VIEWS[key][0]))

        col = QVBoxLayout(self)
        col.addLayout(top)
        col.addWidget(self.tabs, 1)
        col.addWidget(self.status)

    def _build_tokens(self) -> QWidget:
        self.surprisal_view = QTextBrowser(objectName="surprisalTextView")
        self.surprisal_view.setOpenLinks(False)
        self.surprisal_summary = wrapping_label("", "surprisalSummaryLabel")
        self.position_spin = QSpinBox(objectName="inspectPositionSpin", minimum=0, maximum=0)
        self.position_spin.setToolTip(_("The position whose next-token probabilities are shown (or click a token)"))
        self.next_plot = _plot("nextTokenView", _("What could come here"))
        self.next_plot.setMouseEnabled(x=False, y=False)
        self.next_plot.setLabel("bottom", _("probability (%)"))
        self.next_plot.getAxis("bottom").enableAutoSIPrefix(False)
        left = QWidget()
        lc = QVBoxLayout(left)
        lc.setContentsMargins(0, 0, 0, 0)
        lc.addWidget(self.surprisal_view, 1)
        lc.addWidget(self.surprisal_summary)
        right = QWidget()
        rc = QVBoxLayout(right)
        rc.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel(_("Position")))
        row.addWidget(self.position_spin)
        row.addStretch(1)
        rc.addLayout(row)
        rc.addWidget(self.next_plot, 1)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([600, 400])
        return split

    def _build_attention(self) -> QWidget:
        self.attention_combo = QComboBox(objectName="attentionLayerCombo")
        self.head_combo = QComboBox(objectName="attentionHeadCombo")
        self.attention_plot = _plot("attentionHeatmap", _("Attention: rows look at columns"))
        self.attention_plot.invertY(True)
        self.attention_plot.setAspectLocked(False)
        self.attention_image = pg.ImageItem(axisOrder="row-major")
        self.attention_image.setLookupTable(pg.colormap.get("viridis").getLookupTable(nPts=256))
        self.attention_plot.addItem(self.attention_image)
        self.row_plot = _plot("attentionRowPlot", _("Where the chosen token looks"))
        self.row_plot.setMouseEnabled(x=False, y=False)
        self._query = -1
        controls = QHBoxLayout()
        controls.addWidget(QLabel(_("Layer")))
        controls.addWidget(self.attention_combo, 1)
        controls.addWidget(QLabel(_("Head")))
        controls.addWidget(self.head_combo)
        controls.addStretch(1)
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(controls)
        split = QSplitter()
        split.addWidget(self.attention_plot)
        split.addWidget(self.row_plot)
        split.setSizes([600, 400])
        col.addWidget(split, 1)
        return box

    def _build_gates(self) -> QWidget:
        self.gate_layer_combo = QComboBox(objectName="gateLayerCombo")
        self.gate_plot = _plot("gatePlot", _("Gate openings along the text (mean over the state's units)"))
        self.gate_plot.addLegend(offset=(-10, 4), colCount=4, brush=pg.mkBrush(255, 255, 255, 210))
        self.gate_plot.setYRange(0, 1)
        self.norm_plot = _plot("hiddenNormPlot", _("Length of the state after each token"))
        self.norm_plot.addLegend(offset=(-10, 4), colCount=2, brush=pg.mkBrush(255, 255, 255, 210))
        self.norm_plot.setXLink(self.gate_plot)
        row = QHBoxLayout()
        row.addWidget(QLabel(_("Layer")))
        row.addWidget(self.gate_layer_combo)
        row.addStretch(1)
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(row)
        col.addWidget(self.gate_plot, 3)
        col.addWidget(self.norm_plot, 2)
        return box

    def _build_embeddings(self) -> QWidget:
        self.embedding_plot = _plot("embeddingPlot", _("Token embeddings on their two principal axes"))
        self.embedding_points = pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(31, 95, 168, 120), hoverable=True,
                                                   tip=lambda x, y, data: str(data))
        self.embedding_marks = pg.ScatterPlotItem(size=11, pen=pg.mkPen("#c0392b", width=2), brush=None)
        for side in ("bottom", "left"):
            self.embedding_plot.getAxis(side).enableAutoSIPrefix(False)
        self.embedding_plot.addItem(self.embedding_points)
        self.embedding_plot.addItem(self.embedding_marks)
        self.embedding_labels: list[pg.TextItem] = []
        self.search_edit = QLineEdit(objectName="embeddingSearchEdit")
        self.search_edit.setPlaceholderText(_("Find a token"))
        self.neighbour_list = QListWidget(objectName="embeddingNeighboursList")
        self.play_button = QPushButton(_("Play"), objectName="embeddingPlayButton")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip(_("Move through the run's checkpoints, one every {ms} ms").format(ms=PLAY_MS))
        side = QWidget()
        col = QVBoxLayout(side)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.search_edit)
        col.addWidget(QLabel(_("Nearest neighbours (cosine)")))
        col.addWidget(self.neighbour_list, 1)
        col.addWidget(self.play_button)
        split = QSplitter()
        split.addWidget(self.embedding_plot)
        split.addWidget(side)
        split.setSizes([700, 250])
        return split

    def _build_layers(self) -> QWidget:
        self.grad_plot = _plot("layerGradPlot", _("Gradient norm per layer"))
        self.ratio_plot = _plot("layerUpdatePlot", _("Update-to-weight ratio per layer"))
        for plot in (self.grad_plot, self.ratio_plot):
            plot.setLogMode(y=True)
            plot.setLabel("bottom", _("step"))
            plot.addLegend(offset=(-10, 4), brush=pg.mkBrush(255, 255, 255, 210))
        self.ratio_plot.setXLink(self.grad_plot)
        # Where the time scrubber stands, on both: the curves are the run's, the line the moment shown.
        self.step_lines = [pg.InfiniteLine(angle=90, pen=pg.mkPen("#c0392b", width=1, style=Qt.PenStyle.DashLine))
                           for _plot_ in (self.grad_plot, self.ratio_plot)]
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.grad_plot)
        row.addWidget(self.ratio_plot)
        return box

    def _connect(self) -> None:
        self.refresh_button.clicked.connect(self.refresh_runs)
        self.browse_button.clicked.connect(self._browse)
        self.run_combo.activated.connect(lambda _i: self.set_run(self.run_combo.currentData()))
        self.follow_check.toggled.connect(self._on_follow)
        self.tabs.currentChanged.connect(lambda _i: self._draw_stale())
        self.slider.valueChanged.connect(lambda _v: self._on_point())
        self.inspect_button.clicked.connect(self.inspect)
        # A changed setting recomputes by itself, once the spin boxes are left alone for a moment.
        self.settings_timer = QTimer(self, singleShot=True, interval=400)
        self.settings_timer.timeout.connect(self.inspect)
        for spin in (self.temperature_spin, self.top_p_spin, self.top_k_spin):
            spin.valueChanged.connect(lambda _v: self.settings_timer.start())
        self.position_spin.valueChanged.connect(self._on_position)
        self.surprisal_view.anchorClicked.connect(lambda url: self.position_spin.setValue(int(url.toString().removeprefix("pos:"))))
        self.attention_combo.currentIndexChanged.connect(lambda _i: self._fill_heads())
        self.head_combo.currentIndexChanged.connect(lambda _i: self._draw_attention())
        self.attention_image.mouseClickEvent = self._on_heatmap_click  # type: ignore[method-assign]
        self.gate_layer_combo.currentIndexChanged.connect(lambda _i: self._draw_gates())
        self.search_edit.textChanged.connect(lambda _t: self._draw_search())
        self.neighbour_list.itemActivated.connect(lambda item: self.search_edit.setText(item.data(Qt.ItemDataRole.UserRole)))
        self.play_button.toggled.connect(self._on_play)
        self.png_button.clicked.connect(self._ask_png)
        self.data_button.clicked.connect(self._ask_data)

    # ---- the run and its moments ------------------------------------------------------------------

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)  # type: ignore[arg-type]
        if self.run_combo.count() == 0:
            self.refresh_runs()

    def refresh_runs(self) -> None:
        """The runs with a checkpoint, newest first (read from their folders: a few small files each)."""
        from studio.core.runs.index import list_runs

        current = self.run
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for record in list_runs(with_checkpoint=True):
            self.run_combo.addItem(f"{record.name} · {record.arch}", record.path)
        self.run_combo.blockSignals(False)
        if self.run_combo.count() == 0:
            self.status.setText(_("No trained run yet: train one on the Train page, then inspect it here."))
            return
        index = self.run_combo.findData(str(current)) if current else 0
        self.run_combo.setCurrentIndex(max(0, index))
        if current is None or index < 0:
            self.set_run(self.run_combo.currentData())

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, _("A run folder or a checkpoint folder"))
        if folder:
            self.set_run(folder)

    def set_run(self, path: str | Path | None, follow: bool | None = None) -> None:
        """Inspect this run (or this checkpoint folder), at its latest saved moment."""
        if not path:
            return
        self.run = Path(path)
        if self.run_combo.findData(str(self.run)) < 0:
            self.run_combo.addItem(self.run.name, str(self.run))
        self.run_combo.setCurrentIndex(self.run_combo.findData(str(self.run)))
        if follow is not None:
            self.follow_check.setChecked(follow)
        self._previous_map = None
        self.job.cache.clear()
        if not self.text_edit.toPlainText().strip():
            self.text_edit.setPlainText(self._sample_text())
        self._set_points(latest=True)

    def _sample_text(self) -> str:
        """A text to start from: the beginning of the run's latest sample, which is the model's own."""
        import json

        assert self.run is not None
        try:
            with (self.run / "samples.jsonl").open(encoding="utf-8") as f:
                lines = f.readlines()[-1:]
            text = str(json.loads(lines[0]).get("text", "")) if lines else ""
        except (OSError, ValueError, AttributeError):
            text = ""
        return text.strip()[:120]

    def _set_points(self, latest: bool) -> None:
        from studio.core.inference.insight_timeline import time_points

        assert self.run is not None
        was = self.points[self.slider.value()].step if self.points and not latest else None
        self.points = time_points(self.run)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(self.points) - 1))
        index = len(self.points) - 1
        if was is not None:
            index = next((i for i, p in enumerate(self.points) if p.step == was), index)
        self.slider.setValue(max(0, index))
        self.slider.setEnabled(len(self.points) > 1)
        self.slider.blockSignals(False)
        if not self.points:
            self.point_label.setText("")
            self.status.setText(_("{folder} holds no saved checkpoint yet.").format(folder=self.run))
            return
        self._on_point()

    def _place_step_lines(self) -> None:
        if self.points:
            for line in self.step_lines:
                line.setValue(self.points[self.slider.value()].step)

    def _on_point(self) -> None:
        if not self.points:
            return
        self._place_step_lines()
        point = self.points[self.slider.value()]
        # Translators: where the time scrubber stands: "step 500 (snapshot), 3 of 9".
        self.point_label.setText(_("step {step} ({kind}), {n} of {total}").format(
            step=number(point.step), kind=_(POINT_LABELS.get(point.label, point.label)), n=self.slider.value() + 1, total=len(self.points)))
        self.inspect()

    def _on_follow(self, on: bool) -> None:
        if on:
            self.follow_timer.start()
            self._look_for_new_points()
        else:
            self.follow_timer.stop()

    def _look_for_new_points(self) -> None:
        from studio.core.inference.insight_timeline import time_points

        if self.run is None or self.job.running:
            return
        points = time_points(self.run)
        if [(p.step, p.label) for p in points] != [(p.step, p.label) for p in self.points]:
            self._set_points(latest=True)

    def _on_play(self, on: bool) -> None:
        if on:
            if self.points and self.slider.value() == len(self.points) - 1:
                self.slider.setValue(0)  # from the start
            self.play_timer.start()
        else:
            self.play_timer.stop()

    def _play_step(self) -> None:
        if self.job.running:
            return  # the last moment is still being computed
        if self.slider.value() >= len(self.points) - 1:
            self.play_button.setChecked(False)
            return
        self.slider.setValue(self.slider.value() + 1)

    def shutdown(self) -> None:
        self.settings_timer.stop()
        self.follow_timer.stop()
        self.play_timer.stop()
        self.job.cancel_and_wait()

    # ---- computing ----------------------------------------------------------------------------------

    def settings(self) -> DecodingSettings:
        return DecodingSettings(mode="sample", temperature=self.temperature_spin.value(), top_k=0, top_p=self.top_p_spin.value())

    def inspect(self) -> None:
        """Compute every view for the scrubber's checkpoint and the text, off the GUI thread."""
        if not self.points:
            return
        point = self.points[self.slider.value()]
        self._token += 1
        self.status.setText(_("Reading the model at step {step}…").format(step=number(point.step)))
        self.job.inspect(InspectRequest(self.run, point.path, self.text_edit.toPlainText(), self.settings(), self.top_k_spin.value(),
                                        self._token, self._previous_map))

    def _on_result(self, result: InspectResult | None, error: str, token: int) -> None:
        if token != self._token:
            return  # the scrubber has moved since
        if result is None:
            self.status.setText(error)
            self.inspected.emit()
            return
        self.result = result
        if result.embedding_map is not None:
            self._previous_map = result.embedding_map.coords
        self._show_views(result.views)
        self._stale = set(VIEWS)
        self._draw_stale()
        problems = [f"{_(VIEWS[v][0]) if v in VIEWS else v}: {why}" for v, why in result.errors.items()]
        self.status.setText("\n".join(problems) if problems else result.label)
        self.inspected.emit()

    def _draw_stale(self, views: tuple[str, ...] | None = None) -> None:
        """Draw the stale ones of ``views`` (the view shown when None)."""
        if self.result is None:
            return
        draw = {"tokens": self._draw_tokens, "attention": self._fill_attention_layers, "recurrent": self._fill_gate_layers,
                "embeddings": self._draw_embeddings, "layers": self._draw_layers}
        for view in views or (self.current_view(),):
            if view in self._stale:
                self._stale.discard(view)
                draw[view]()

    def draw_all(self) -> None:
        """Draw every view now (an export of another tab, tests)."""
        self._draw_stale(tuple(VIEWS))

    def _show_views(self, views: list[str]) -> None:
        """A view the model does not have (attention in an LSTM, gates in a GPT) is disabled."""
        have = set(views) | {"layers"}
        if "predictions" in views:
            have.add("tokens")
        for key, page in self.view_pages.items():
            self.tabs.setTabEnabled(self.tabs.indexOf(page), key in have)
        if not self.tabs.isTabEnabled(self.tabs.currentIndex()):
            self.tabs.setCurrentWidget(self.view_pages["tokens"])

    # ---- text and probabilities -----------------------------------------------------------------------

    def _draw_tokens(self) -> None:
        result = self.result
        p = result.predictions if result else None
        reading = result.reading if result else None
        if p is None:
            shown = "".join(html.escape(t.text) for t in reading.tokens) if reading is not None else ""
            self.surprisal_view.setHtml(shown)
            self.surprisal_summary.setText("")
            self.next_plot.clear()
            return
        parts = []
        for i, (token, bits) in enumerate(zip(p.reading.tokens, p.surprisal.bits, strict=True)):
            text = html.escape(token.text).replace("\n", "↵<br>") or "·"
            title = html.escape(_("{bits} bits").format(bits=f"{bits:.2f}"))  # babel per token cost 0.1 ms each
            parts.append(f'<a href="pos:{i}" title="{title}" style="color:#111; text-decoration:none; '
                         f'background-color:{surprisal_colour(bits)}">{text}</a>')
        self.surprisal_view.setHtml('<div style="font-size:14pt; line-height:150%; white-space:pre-wrap">' + "".join(parts) + "</div>")
        s = p.surprisal
        worst = ", ".join(f"“{shown_token(p.reading.tokens[i].text)}” {number(p.surprisal.bits[i], 1)}" for i in s.most_surprising)
        per_token = number(s.bits_per_token, 2) if s.bits_per_token is not None else "—"
        if s.bits_per_character is not None:
            # Translators: the means of the surprisal; {tokens} lists the most surprising tokens with their bits.
            text = _("Mean: {per_token} bits per token, {per_char} bits per character. Most surprising: {tokens}").format(
                per_token=per_token, per_char=number(s.bits_per_character, 2), tokens=worst)
        else:
            text = _("Mean: {per_token} bits per token. Most surprising: {tokens}").format(per_token=per_token, tokens=worst)
        self.surprisal_summary.setText(text)
        self.position_spin.blockSignals(True)
        self.position_spin.setMaximum(max(0, len(p.positions) - 1))
        self._position = min(self._position, len(p.positions) - 1)
        self.position_spin.setValue(self._position)
        self.position_spin.blockSignals(False)
        self._draw_next()

    def _on_position(self, value: int) -> None:
        self._position = value
        self._draw_next()

    def _draw_next(self) -> None:
        plot = self.next_plot
        plot.clear()
        p = self.result.predictions if self.result else None
        if p is None or not p.positions:
            return
        pos = p.positions[min(self._position, len(p.positions) - 1)]
        names = [shown_token(c.text) for c in pos.candidates]
        values = [100 * c.probability for c in pos.candidates]
        ys = list(range(len(names)))
        actual = pos.actual.token_id if pos.actual else None
        brushes = ["#d35400" if c.token_id == actual else "#1f5fa8" for c in pos.candidates]
        plot.addItem(pg.BarGraphItem(x0=0, y=ys, height=0.7, width=values, brushes=brushes))
        plot.getAxis("left").setTicks([list(zip(ys, names, strict=True))])
        plot.invertY(True)
        plot.setXRange(0, max(values + [5.0]) * 1.05, padding=0)
        plot.setYRange(-0.6, len(names) - 0.4, padding=0)
        where = shown_token(p.reading.tokens[pos.index].text) if pos.index < len(p.reading.tokens) else _("after the text")
        if pos.actual is not None:
            title = _("Position {n} (“{token}”): the model gave it {p} %, {bits} bits").format(
                n=pos.index, token=where, p=number(100 * pos.actual.model_probability, 1), bits=number(pos.surprisal or 0.0, 2))
        else:
            title = _("What the model expects after the text")
        plot.setTitle(html.escape(title))

    # ---- attention ------------------------------------------------------------------------------------

    def _maps(self) -> list[Any]:
        return list(self.result.attention or []) if self.result else []

    def _fill_attention_layers(self) -> None:
        maps = self._maps()
        keep = self.attention_combo.currentIndex()
        self.attention_combo.blockSignals(True)
        self.attention_combo.clear()
        stacks = {"encoder": _("encoder"), "decoder": _("decoder")}
        kinds = {"self": _("self-attention"), "cross": _("cross-attention")}
        for m in maps:
            # Translators: an attention layer: "decoder self-attention, layer 2".
            self.attention_combo.addItem(_("{stack} {kind}, layer {n}").format(stack=stacks[m.stack], kind=kinds[m.kind], n=m.layer + 1))
        self.attention_combo.setCurrentIndex(keep if 0 <= keep < len(maps) else 0)
        self.attention_combo.blockSignals(False)
        self._fill_heads()

    def _fill_heads(self) -> None:
        maps = self._maps()
        keep = self.head_combo.currentIndex()
        self.head_combo.blockSignals(True)
        self.head_combo.clear()
        i = self.attention_combo.currentIndex()
        if 0 <= i < len(maps):
            self.head_combo.addItem(_("average of the heads"))
            for h in range(maps[i].weights.size(0)):
                self.head_combo.addItem(_("head {n}").format(n=h + 1))
        self.head_combo.setCurrentIndex(keep if 0 <= keep < self.head_combo.count() else 0)
        self.head_combo.blockSignals(False)
        self._draw_attention()

    def attention_matrix(self) -> tuple[Any, np.ndarray] | None:
        """The map and the [queries, keys] weights shown (one head, or the heads' mean)."""
        maps = self._maps()
        i = self.attention_combo.currentIndex()
        if not 0 <= i < len(maps):
            return None
        m = maps[i]
        head = self.head_combo.currentIndex() - 1
        weights = m.weights.mean(dim=0) if head < 0 else m.weights[head]
        return m, weights.numpy()

    def _draw_attention(self) -> None:
        shown = self.attention_matrix()
        if shown is None:
            self.attention_image.clear()
            self.row_plot.clear()
            return
        m, w = shown
        self.attention_image.setImage(w, levels=(0.0, max(1e-6, float(w.max()))))
        self.attention_image.setRect(0, 0, w.shape[1], w.shape[0])
        few = len(m.keys) <= 48  # token labels on the axes while they can be read
        self.attention_plot.getAxis("bottom").setTicks([[(k + 0.5, shown_token(t)) for k, t in enumerate(m.keys)]] if few else None)
        self.attention_plot.getAxis("left").setTicks([[(q + 0.5, shown_token(t)) for q, t in enumerate(m.queries)]] if few else None)
        self.attention_plot.setRange(xRange=(0, w.shape[1]), yRange=(0, w.shape[0]), padding=0)
        self._query = min(self._query, w.shape[0] - 1) if self._query >= 0 else w.shape[0] - 1
        self._draw_row()

    def _on_heatmap_click(self, event: Any) -> None:
        pos = event.pos()
        self.select_query(int(pos.y()))
        event.accept()

    def select_query(self, row: int) -> None:
        """Show where the token of ``row`` looks (a click on the heatmap's row does this)."""
        shown = self.attention_matrix()
        if shown is None:
            return
        self._query = max(0, min(row, shown[1].shape[0] - 1))
        self._draw_row()

    def _draw_row(self) -> None:
        shown = self.attention_matrix()
        self.row_plot.clear()
        if shown is None or self._query < 0:
            return
        m, w = shown
        row = w[self._query]
        xs = list(range(len(row)))
        self.row_plot.addItem(pg.BarGraphItem(x=xs, height=row.tolist(), width=0.8, brush="#1f5fa8"))
        few = len(m.keys) <= 48
        self.row_plot.getAxis("bottom").setTicks([[(k, shown_token(t)) for k, t in enumerate(m.keys)]] if few else None)
        self.row_plot.setYRange(0, max(0.05, float(row.max())) * 1.05, padding=0)
        self.row_plot.setTitle(html.escape(_("Where “{token}” looks").format(token=shown_token(m.queries[self._query]))))

    # ---- recurrent states -------------------------------------------------------------------------------

    def _fill_gate_layers(self) -> None:
        states = self.result.recurrent if self.result else None
        keep = self.gate_layer_combo.currentIndex()
        self.gate_layer_combo.blockSignals(True)
        self.gate_layer_combo.clear()
        for layer in states.layers if states is not None else []:
            self.gate_layer_combo.addItem(_("layer {n}").format(n=layer.layer + 1))
        self.gate_layer_combo.setCurrentIndex(keep if 0 <= keep < self.gate_layer_combo.count() else 0)
        self.gate_layer_combo.blockSignals(False)
        self._draw_gates()

    def _draw_gates(self) -> None:
        for plot in (self.gate_plot, self.norm_plot):
            plot.clear()
        states = self.result.recurrent if self.result else None
        i = self.gate_layer_combo.currentIndex()
        if states is None or not 0 <= i < len(states.layers):
            return
        layer = states.layers[i]
        xs = list(range(len(states.labels)))
        names = {"input": _("input gate"), "forget": _("forget gate"), "output": _("output gate"), "cell": _("cell candidate"),
                 "reset": _("reset gate"), "update": _("update gate"), "new": _("new-state candidate")}
        for g, (name, values) in enumerate(layer.gates.items()):
            if name in ("cell", "new"):
                continue  # candidates lie in [-1, 1], not openings: they would share the axis badly
            self.gate_plot.plot(xs, values.mean(dim=1).tolist(), pen=pg.mkPen(COLOURS[g % len(COLOURS)], width=2), name=names.get(name, name))
        self.norm_plot.plot(xs, layer.hidden_norm.tolist(), pen=pg.mkPen("#333333", width=2), name=_("hidden state"))
        if layer.cell_norm is not None:
            self.norm_plot.plot(xs, layer.cell_norm.tolist(), pen=pg.mkPen("#d35400", width=2), name=_("memory cell"))
        few = len(states.labels) <= 60
        ticks = [list(enumerate(shown_token(t) for t in states.labels))] if few else None
        for plot in (self.gate_plot, self.norm_plot):
            plot.getAxis("bottom").setTicks(ticks)
        self.gate_plot.setYRange(0, 1, padding=0.02)

    # ---- embeddings ---------------------------------------------------------------------------------------

    def _draw_embeddings(self) -> None:
        m = self.result.embedding_map if self.result else None
        if m is None:
            self.embedding_points.clear()
            return
        coords = m.coords.numpy()
        start = m.special  # the special tokens (<pad>, <eos>, ...) would sit apart and squash the map
        self.embedding_points.setData(x=coords[start:, 0], y=coords[start:, 1], data=[shown_token(t) for t in m.labels[start:]])
        self.embedding_plot.setLabel("bottom", _("axis 1 ({share} % of the variance)").format(share=number(100 * m.explained[0], 1)))
        self.embedding_plot.setLabel("left", _("axis 2 ({share} % of the variance)").format(share=number(100 * m.explained[1], 1)))
        self._draw_search()

    def _draw_search(self) -> None:
        for item in self.embedding_labels:
            self.embedding_plot.removeItem(item)
        self.embedding_labels = []
        self.embedding_marks.clear()
        self.neighbour_list.clear()
        from studio.core.inference.insight import cosine_neighbours, find_labels

        m = self.result.embedding_map if self.result else None
        table = self.result.embeddings if self.result else None
        query = self.search_edit.text()
        if m is None or table is None or not query:
            return
        # On the GUI thread: a search over the labels and one matrix-vector product (8,000 tokens
        # of 256 dimensions: about a millisecond).
        found = find_labels(m.labels, query, limit=20)
        if not found:
            self.neighbour_list.addItem(_("No token contains “{text}”.").format(text=query))
            return
        target = found[0][0]
        neighbours = [(i, m.labels[i], s) for i, s in cosine_neighbours(table, target, 12)]
        coords = m.coords.numpy()
        marked = [target] + [i for i, _l, _s in neighbours if i != target][:8]
        self.embedding_marks.setData(x=coords[marked, 0], y=coords[marked, 1])
        for i in marked:
            label = pg.TextItem(shown_token(m.labels[i]), color="#c0392b", anchor=(0, 1))
            label.setPos(float(coords[i, 0]), float(coords[i, 1]))
            self.embedding_plot.addItem(label)
            self.embedding_labels.append(label)
        for _i, text, similarity in neighbours:
            item = QListWidgetItem(f"{shown_token(text)}   {number(similarity, 3)}")
            item.setData(Qt.ItemDataRole.UserRole, text)
            self.neighbour_list.addItem(item)

    # ---- training dynamics ------------------------------------------------------------------------------

    def _draw_layers(self) -> None:
        s = self.result.layers if self.result else None
        drawn = (self.run, len(s.steps) if s is not None else 0)
        if drawn == self._layers_drawn:
            return  # the same run and records: moving the scrubber leaves these curves as they are
        self._layers_drawn = drawn
        for plot, line in zip((self.grad_plot, self.ratio_plot), self.step_lines, strict=True):
            plot.clear()
            plot.addItem(line, ignoreBounds=True)
        self._place_step_lines()
        if s is None or not s.steps:
            return
        for i, name in enumerate(s.layers):
            label = {"embeddings": _("embeddings"), "output": _("output")}.get(name) or _("layer {n}").format(n=name)
            pen = pg.mkPen(COLOURS[i % len(COLOURS)], width=1.5)
            for plot, values in ((self.grad_plot, s.grad_norms[name]), (self.ratio_plot, s.update_ratios[name])):
                ys = np.array(values, dtype=float)
                ys[~(ys > 0)] = np.nan  # a log axis cannot show 0
                plot.plot(s.steps, ys, pen=pen, name=label, connect="finite")

    # ---- export -------------------------------------------------------------------------------------------

    def current_view(self) -> str:
        page = self.tabs.currentWidget()
        return next(k for k, p in self.view_pages.items() if p is page)

    def _ask_png(self) -> None:
        path, _f = QFileDialog.getSaveFileName(self, _("Export the view as PNG"), f"{self.current_view()}.png", "PNG (*.png)")
        if path:
            self.export_png(Path(path))

    def export_png(self, path: Path) -> bool:
        if not self.tabs.currentWidget().grab().save(str(path), "PNG"):
            self.status.setText(_("Could not write {path}.").format(path=path))
            return False
        self.status.setText(_("Saved {path}.").format(path=path))
        return True

    def _ask_data(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, _("Export the view's data"), f"{self.current_view()}.csv",
                                                   "CSV (*.csv);;JSON (*.json)")
        if path:
            self.export_data(Path(path))

    def view_rows(self, view: str, result: InspectResult | None = None, shown: tuple[int, int] | None = None) -> list[dict[str, Any]]:
        """The numbers of ``view`` as rows; ``shown`` is the attention map and head chosen (they
        are read on the GUI thread, the rows may be made on another)."""
        from studio.core.inference import insight_timeline as t

        r = result or self.result
        if shown is None:
            shown = (self.attention_combo.currentIndex(), self.head_combo.currentIndex() - 1)
        if r is None:
            return []
        if view == "tokens" and r.predictions is not None:
            return t.prediction_rows(r.predictions)
        if view == "attention" and r.attention:
            i, head = shown  # the map shown: its head, or the heads' mean (-1)
            maps = [r.attention[i]] if 0 <= i < len(r.attention) else []
            return t.attention_rows(maps, head=head)
        if view == "recurrent" and r.recurrent is not None:
            return t.recurrent_rows(r.recurrent)
        if view == "embeddings" and r.embedding_map is not None:
            return t.embedding_rows(r.embedding_map)
        if view == "layers" and r.layers is not None:
            return t.layer_rows(r.layers)
        return []

    def export_data(self, path: Path) -> threading.Thread:
        """Write the current view's numbers (JSON for a .json name, else CSV) on a thread of its
        own: every layer's and head's attention over a long text is millions of rows."""
        from studio.core.inference.insight_timeline import rows_text

        view = self.current_view()
        fmt = "json" if path.suffix.lower() == ".json" else "csv"
        # What is shown now, captured here: a later answer may replace self.result while the
        # thread makes the rows (a 512-token attention map alone is 262,144 of them).
        result, shown = self.result, (self.attention_combo.currentIndex(), self.head_combo.currentIndex() - 1)

        def write() -> None:
            rows = self.view_rows(view, result, shown)
            try:
                atomic_write_text(path, rows_text(rows, fmt))
            except OSError as e:
                self.exported.emit(describe_os_error(e))
                return
            self.exported.emit(ngettext("Saved {n} row to {path}.", "Saved {n} rows to {path}.", len(rows)).format(n=number(len(rows)), path=path))

        thread = threading.Thread(target=write, name="inspect-export", daemon=True)
        thread.start()
        return thread

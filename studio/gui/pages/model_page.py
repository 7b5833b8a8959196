"""Model page: pick an architecture and size, edit its settings, and see what it will cost.

The form is generated from the architecture's config dataclass. The parameter count (exact, from
the config) and the training-memory estimate update as fields change, digit by digit; invalid
combinations, found when the session builds the run's configuration, are flagged at their field
and block Start with the reason.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QScrollArea, QVBoxLayout, QWidget

from studio.core.errors import ConfigIssue, StudioError
from studio.core.i18n import N_, _
from studio.core.settings import ModelConfig
from studio.gui.formatting import number
from studio.gui.session import StudioSession
from studio.gui.widgets.config_form import ConfigForm
from studio.gui.widgets.explanation import architecture_explain_button
from studio.gui.widgets.layout import row_widget

CUSTOM = "custom"
# Translators: the size presets of an architecture; "custom" is whatever the fields below hold.
PRESETS = {CUSTOM: N_("custom"), "tiny": N_("tiny"), "small": N_("small"), "medium": N_("medium")}


class ModelPage(QWidget):
    def __init__(self, session: StudioSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("modelPage")
        self.session = session
        self.form: ConfigForm | None = None
        self._arch = "gpt"  # the architecture the form shows
        self._applying_preset = False

        self.arch_combo = QComboBox(objectName="architectureCombo")
        self.preset_combo = QComboBox(objectName="sizePresetCombo")
        for name, label in PRESETS.items():
            self.preset_combo.addItem(_(label), name)
        self.param_label = QLabel("—", objectName="paramCountLabel")
        self.memory_label = QLabel("—", objectName="memoryLabel")
        self.memory_label.setWordWrap(True)
        self.issue_label = QLabel(objectName="modelIssuesLabel")
        self.issue_label.setStyleSheet("color: #c0392b;")
        self.issue_label.setWordWrap(True)
        self.loading_label = QLabel(_("Loading PyTorch…"), objectName="modelLoadingLabel")

        top = QGroupBox(_("Architecture"))
        tform = QFormLayout(top)
        self.arch_explain = architecture_explain_button("architectureExplainButton", lambda: self.arch_combo.currentData() or "gpt")
        tform.addRow(_("Architecture"), row_widget(self.arch_combo, self.arch_explain))
        tform.addRow(_("Size preset"), self.preset_combo)
        cost = QGroupBox(_("Size and cost"))
        cform = QFormLayout(cost)
        cform.addRow(_("Parameters"), self.param_label)
        cform.addRow(_("Training memory"), self.memory_label)
        cform.addRow("", self.issue_label)

        self.form_area = QScrollArea()
        self.form_area.setWidgetResizable(True)
        self.form_box = QGroupBox(_("Settings"))
        self.form_layout = QVBoxLayout(self.form_box)
        self.form_layout.addWidget(self.loading_label)
        self.form_area.setWidget(self.form_box)

        layout = QVBoxLayout(self)
        layout.addWidget(top)
        layout.addWidget(cost)
        layout.addWidget(self.form_area, 1)
        self.arch_combo.setEnabled(False)
        self.preset_combo.setEnabled(False)
        session.changed.connect(self._update_cost)

    # Called once torch and the model registry are imported (see MainWindow).
    def engine_ready(self) -> None:
        from studio.core.architectures import ARCHITECTURE_CONFIGS

        self.loading_label.hide()
        for name, cls in ARCHITECTURE_CONFIGS.items():
            self.arch_combo.addItem(_(cls.label), name)
        saved = StudioSession.saved_tables().get("model", {})
        arch = saved.get("arch", "gpt") if saved.get("arch") in ARCHITECTURE_CONFIGS else "gpt"
        values = {k: v for k, v in saved.items() if k != "arch"}
        self.arch_combo.setCurrentIndex(self.arch_combo.findData(arch))
        self._build_form(arch, values)
        self.arch_combo.currentIndexChanged.connect(self._on_arch_changed)
        self.preset_combo.currentIndexChanged.connect(lambda _index: self._on_preset(self.preset_combo.currentData()))
        self.arch_combo.setEnabled(True)
        self.preset_combo.setEnabled(True)

    def set_architecture(self, arch: str) -> None:
        self.arch_combo.setCurrentIndex(self.arch_combo.findData(arch))

    def _on_arch_changed(self) -> None:
        # Keep what the person set among the settings the architectures share (context length,
        # dropout, width...). A value still at the old architecture's default takes the new one's:
        # the GPT's defaults (RMSNorm, QK-norm, ReLU²) are not the encoders'.
        kept: dict[str, Any] = {}
        if self.form is not None:
            from studio.core.architectures import config_class

            old_defaults = config_class(self._arch)().to_dict()
            kept = {k: v for k, v in self.form.raw_values()[0].items() if old_defaults.get(k) != v}
        self._build_form(self.arch_combo.currentData(), kept)

    def _build_form(self, arch: str, values: dict[str, Any]) -> None:
        from studio.core.architectures import config_class

        cls = config_class(arch)
        self._arch = arch
        defaults = cls().to_dict()
        defaults.pop("arch", None)
        known = {k: v for k, v in values.items() if k in defaults}
        if self.form is not None:
            self.form_layout.removeWidget(self.form)
            self.form.deleteLater()
        self.form = ConfigForm(cls, {**defaults, **known})
        self.form.changed.connect(self._on_form_changed)
        self.form_layout.addWidget(self.form)
        # Translators: the title of an architecture's settings: "GPT-style decoder settings".
        self.form_box.setTitle(_("{architecture} settings").format(architecture=_(cls.label)))
        self._on_form_changed()

    def _on_preset(self, name: str) -> None:
        if name == CUSTOM or self.form is None:
            return
        from studio.core.architectures import config_class

        values = config_class(self.arch_combo.currentData()).presets.get(name, {})
        self._applying_preset = True
        try:
            self.form.set_values(values)
        finally:
            self._applying_preset = False

    def _on_form_changed(self) -> None:
        if self.form is None:
            return
        if not self._applying_preset and self.preset_combo.currentData() != CUSTOM:
            self.preset_combo.blockSignals(True)
            self.preset_combo.setCurrentIndex(self.preset_combo.findData(CUSTOM))
            self.preset_combo.blockSignals(False)
        values, issues = self.form.raw_values()
        self.session.set_tables({"model": {"arch": self.arch_combo.currentData(), **values}}, issues)

    def _update_cost(self) -> None:
        model: ModelConfig | None = self.session.model
        issues: list[ConfigIssue] = self.session.issues_for("model")
        if self.form is not None:
            self.form.show_issues(issues)
        self.issue_label.setText("\n".join(str(i) for i in issues))
        if model is None or issues:
            self.param_label.setText("—")
            self.memory_label.setText("—")
            return
        from studio.core.architectures import estimate_training_memory
        from studio.core.architectures import human_bytes as _human

        vocab, exact = self.session.vocab_size()
        try:
            estimate = estimate_training_memory(model, vocab, self.session.train.batch_size, model.context_length, self.session.optimizer.name)
        except StudioError as e:
            self.memory_label.setText(str(e))
            return
        if exact:
            params = _("<b>{params}</b> (vocabulary {vocab}, from the built data)")
        else:
            params = _("<b>{params}</b> (vocabulary {vocab}, estimated; build the data for the exact figure)")
        self.param_label.setText(params.format(params=number(estimate.params), vocab=number(vocab)))
        # Translators: the training-memory estimate; {batch} × {context} is the batch size times the context length.
        self.memory_label.setText(_(
            "about <b>{total}</b> for batch {batch} × {context} tokens: weights {weights}, gradients {gradients}, "
            "optimizer {optimizer}, activations {activations}"
        ).format(total=_human(estimate.total_bytes), batch=number(self.session.train.batch_size), context=number(model.context_length),
                 weights=_human(estimate.param_bytes), gradients=_human(estimate.grad_bytes), optimizer=_human(estimate.optimizer_bytes),
                 activations=_human(estimate.activation_bytes)))


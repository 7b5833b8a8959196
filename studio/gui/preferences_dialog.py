"""Edit > Preferences: the data folder, the default device, the language, the theme, how often
live plots redraw and the CPU threads runs use. The values, their checks and their file are the
engine's (``studio.core.preferences``); the window applies them (``MainWindow.apply_preferences``)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core import i18n
from studio.core.fileio import check_writable, describe_os_error
from studio.core.i18n import _
from studio.core.preferences import (
    DEVICE_LABELS,
    DEVICES,
    MAX_REFRESH_MS,
    MIN_REFRESH_MS,
    SYSTEM_LANGUAGE,
    THEME_LABELS,
    THEMES,
    Preferences,
    default_data_folder,
    language_name,
)
from studio.gui.widgets.layout import row_widget, wrapping_label


def _combo(name: str, items: list[tuple[str, str]], current: str) -> QComboBox:
    combo = QComboBox(objectName=name)
    for value, label in items:
        combo.addItem(label, value)
    if combo.findData(current) < 0:  # a saved value this machine does not offer stays visible
        combo.addItem(current, current)
    combo.setCurrentIndex(combo.findData(current))
    return combo


class PreferencesDialog(QDialog):
    def __init__(self, prefs: Preferences, devices: list[str] | None = None, parent: QWidget | None = None):
        """``devices``: the devices this machine has (None until PyTorch is loaded: all are offered)."""
        super().__init__(parent)
        self.setObjectName("preferencesDialog")
        self.setWindowTitle(_("Preferences"))
        self.setMinimumWidth(520)  # the data folder's path is readable, not elided after a few letters
        self.prefs = prefs
        form = QFormLayout()
        form.addRow(_("Data folder"), self._build_data_folder())
        self.device_combo = _combo("prefDeviceCombo", [(d, _(DEVICE_LABELS[d])) for d in DEVICES if devices is None or d in devices],
                                   prefs.device)
        self.device_combo.setToolTip(_("The device of runs whose Run > Device setting is auto"))
        form.addRow(_("Default device"), self.device_combo)
        form.addRow(_("Language"), self._build_language())
        self.theme_combo = _combo("prefThemeCombo", [(t, _(THEME_LABELS[t])) for t in THEMES], prefs.theme)
        form.addRow(_("Theme"), self.theme_combo)
        self.refresh_spin = QSpinBox(objectName="prefPlotRefreshSpin", minimum=MIN_REFRESH_MS, maximum=MAX_REFRESH_MS, singleStep=50)
        self.refresh_spin.setValue(prefs.plot_refresh_ms)
        self.refresh_spin.setSuffix(_(" ms"))
        self.refresh_spin.setToolTip(_("How often the live curves are redrawn during a run; longer leaves more CPU to training"))
        form.addRow(_("Redraw plots every"), self.refresh_spin)
        form.addRow(_("CPU threads"), self._build_threads())
        for label, widget in ((_("Default device"), self.device_combo), (_("Theme"), self.theme_combo),
                              (_("Redraw plots every"), self.refresh_spin), (_("CPU threads"), self.threads_spin)):
            widget.setAccessibleName(label)
        self.error_label = wrapping_label("", "prefErrorLabel")
        self.error_label.setStyleSheet("color: #c0392b;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setObjectName("prefOkButton")
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setObjectName("prefCancelButton")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        col = QVBoxLayout(self)
        col.addLayout(form)
        col.addWidget(self.error_label)
        col.addWidget(buttons)

    def _build_data_folder(self) -> QWidget:
        self.data_edit = QLineEdit(self.prefs.data_folder, objectName="prefDataFolderEdit")
        self.data_edit.setPlaceholderText(_("Default: {path}").format(path=default_data_folder()))
        self.data_edit.setToolTip(_("Where runs and downloaded datasets go; new runs use a new folder at once"))
        self.data_edit.setAccessibleName(_("Data folder"))
        browse = QPushButton(_("Browse…"), objectName="prefDataFolderBrowse")
        browse.clicked.connect(self._browse)
        return row_widget(self.data_edit, browse)

    def _build_language(self) -> QWidget:
        system = _("System ({language})").format(language=language_name(i18n.system_language()))
        items = [(SYSTEM_LANGUAGE, system), *((code, language_name(code)) for code in i18n.available_languages())]
        self.language_combo = _combo("prefLanguageCombo", items, self.prefs.language)
        self.language_combo.setAccessibleName(_("Language"))
        self.language_note = wrapping_label("", "prefLanguageNote")
        self.language_combo.currentIndexChanged.connect(self._on_language)
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.language_combo)
        col.addWidget(self.language_note)
        return box

    def _build_threads(self) -> QSpinBox:
        cores = os.cpu_count() or 1
        self.threads_spin = QSpinBox(objectName="prefThreadsSpin", minimum=0, maximum=max(cores, self.prefs.cpu_threads))
        # Translators: shown for 0 CPU threads, which the engine turns into one fewer than the cores.
        self.threads_spin.setSpecialValueText(_("Automatic ({n})").format(n=max(1, cores - 1)))
        self.threads_spin.setValue(self.prefs.cpu_threads)
        self.threads_spin.setToolTip(_("Threads for PyTorch's CPU math in runs whose Run > CPU threads is 0"))
        return self.threads_spin

    def _on_language(self) -> None:
        changed = self.language_combo.currentData() != self.prefs.language
        self.language_note.setText(_("The new language applies when Studio starts again.") if changed else "")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, _("Choose the data folder"), self.data_edit.text() or default_data_folder())
        if folder:
            self.data_edit.setText(folder)

    def values(self) -> Preferences:
        return dataclasses.replace(
            self.prefs, data_folder=self.data_edit.text().strip(), device=self.device_combo.currentData(),
            language=self.language_combo.currentData(), theme=self.theme_combo.currentData(),
            plot_refresh_ms=self.refresh_spin.value(), cpu_threads=self.threads_spin.value(),
        )

    def accept(self) -> None:
        """Refuse a data folder that cannot be used, saying why, and keep the dialog open."""
        values = self.values()
        problem = values.problem("data_folder")
        if problem is None and values.data_folder and values.data_folder != self.prefs.data_folder:
            try:
                check_writable(Path(values.data_folder).expanduser())
            except OSError as e:
                problem = describe_os_error(e)
        if problem:
            self.error_label.setText(_("Data folder: {problem}").format(problem=problem))
            return
        super().accept()

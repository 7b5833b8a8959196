"""Render each page of the real window to PNG, on a virtual X screen.

    xvfb-run -a -s "-screen 0 1280x800x24" env QT_QPA_PLATFORM=xcb .venv/bin/python scripts/screenshots.py [--lang zh_CN]

Writes docs/screenshots/<lang>/*.png (``--out`` to change the folder), one language per call.

States: the empty window; a loaded and built corpus (Data and Model pages); a run in progress with
curves (Train page). User folders go to a temporary directory. The corpus is Tiny Shakespeare from
../shared/data when present, else Studio's own demo stories.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHAKESPEARE = REPO.parent / "shared" / "data" / "lm" / "tinyshakespeare" / "input.txt"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--lang", default="en", help="the window's language (en, zh_CN)")
    parser.add_argument("--run-seconds", type=float, default=40.0)
    args = parser.parse_args()
    args.out = args.out or REPO / "docs" / "screenshots" / args.lang
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["STUDIO_LANG"] = args.lang
    scratch = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    os.environ["STUDIO_DATA_DIR"] = str(scratch / "data")
    os.environ["STUDIO_CACHE_DIR"] = str(scratch / "cache")
    os.environ["STUDIO_CONFIG_DIR"] = str(scratch / "config")

    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from studio.core import i18n
    from studio.gui.app import install_qt_translations
    from studio.gui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    install_qt_translations(app, i18n.set_language(args.lang))
    window = MainWindow()
    window.resize(1280, 800)
    window.move(0, 0)
    window.show()

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)

    def wait_for(predicate, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise TimeoutError("the window did not reach the expected state")
            pump(0.1)

    def shoot(name: str) -> None:
        pump(0.5)
        window.repaint()
        image = window.grab()  # the window as the X server shows it, after a full repaint
        path = args.out / f"{name}.png"
        image.save(str(path))
        print(f"wrote {path} ({image.width()}x{image.height()})")

    window.load_engine()
    wait_for(lambda: window.engine_ready)

    # 1. Empty state: no corpus chosen yet.
    window.data_page.set_paths([])
    window.nav.setCurrentRow(0)
    shoot("1-data-empty")

    # 2. A loaded, built corpus.
    corpus = SHAKESPEARE if SHAKESPEARE.exists() else None
    if corpus is None:
        from studio.core.data.demo import demo_corpus_path

        corpus = demo_corpus_path()
    window.data_page.set_paths([str(corpus)])
    window.data_page.start_build()
    wait_for(lambda: window.session.prepared is not None)
    shoot("2-data-built")
    window.nav.setCurrentRow(1)
    window.model_page.set_architecture("gpt")
    window.model_page.preset_combo.setCurrentIndex(window.model_page.preset_combo.findData("small"))
    shoot("3-model")

    # 3. A run in progress.
    page = window.train_page
    page.forms["train"].set_values({"steps": 2000, "eval_interval": 100, "eval_batches": 10, "sample_tokens": 160})
    page.forms["run"].set_values({"name": "shakespeare-gpt"})
    window.nav.setCurrentRow(2)
    page.start()
    wait_for(lambda: page.monitor.plots.evals.size >= 2, timeout=args.run_seconds * 10)
    pump(args.run_seconds / 4)
    shoot("4-train-running")
    page.monitor.log_check.setChecked(True)
    page.monitor.tabs.setCurrentIndex(1)
    shoot("5-train-log-scale")
    first_run = page.monitor.run_dir
    page.stop()
    wait_for(lambda: page.monitor.idle, timeout=120)
    page.monitor.log_check.setChecked(False)

    # 4. Trying the model: free generation, with confidence shading.
    tried = window.try_page
    window.show_page("Try")
    tried.set_model(first_run)
    tried.tabs.setCurrentIndex(4)
    tried.inputs["generate"]["text"].setPlainText("ROMEO:\n")
    tried.mode_combo.setCurrentIndex(tried.mode_combo.findData("sample"))
    tried.seed_spin.setValue(1)
    tried.max_tokens_spin.setValue(200)
    tried.run()
    wait_for(lambda: not tried.job.running, timeout=120)
    shoot("6-try-generate")

    # 5. Fine-tuning setup with the example preview.
    ft = window.finetune_page
    window.show_page("Fine-tune")
    ft.set_base(first_run)
    ft.set_task("translate", "demo-translate")
    ft.preview()
    shoot("7-finetune-preview")

    # 6. A second, shorter run, then both compared in the library.
    page.forms["train"].set_values({"steps": 300, "lr": 0.001})
    page.forms["run"].set_values({"name": "shakespeare-gpt-lr1e-3"})
    window.show_page("Train")
    page.start()
    wait_for(lambda: page.monitor.state == "running", timeout=120)
    wait_for(lambda: page.monitor.idle, timeout=600)
    runs = window.runs_page
    window.show_page("Runs")
    runs.table.selectAll()
    runs.compare_selected()
    shoot("8-runs-compare")
    runs.tabs.setCurrentIndex(0)
    shoot("9-runs-library")

    # 7. The Search page, ready to start from the current settings.
    window.show_page("Search")
    shoot("10-search")

    # 8. Inside the first run (the Inspect page), at its latest snapshot; then an LSTM's gates.
    inspect = window.inspect_page
    window.show_page("Inspect")
    inspect.text_edit.setPlainText("ROMEO:\nBut soft, what light through yonder window breaks?")
    inspect.set_run(first_run)
    wait_for(lambda: inspect.result is not None and not inspect.job.running, timeout=120)
    inspect.position_spin.setValue(10)
    for name, view in (("13-inspect-text", "tokens"), ("14-inspect-attention", "attention"), ("15-inspect-embeddings", "embeddings"),
                       ("16-inspect-layers", "layers")):
        inspect.tabs.setCurrentWidget(inspect.view_pages[view])
        if view == "attention":
            inspect.head_combo.setCurrentIndex(0)
            inspect.select_query(12)
        if view == "embeddings":
            inspect.search_edit.setText("e")
        shoot(name)
    from studio.core.config import RunConfig
    from studio.core.resources import find_config
    from studio.core.training.trainer import Trainer

    lstm = RunConfig.load(find_config("shakespeare-char-lstm"), [f'data.paths=["{corpus}"]', "train.steps=300", "train.eval_interval=100",
                                                               "train.sample_tokens=0", "run.name=shakespeare-lstm"])
    lstm_run = Trainer(lstm).fit().run_dir
    inspect.set_run(lstm_run)
    wait_for(lambda: inspect.run == lstm_run and not inspect.job.running and inspect.result is not None, timeout=120)
    inspect.tabs.setCurrentWidget(inspect.view_pages["recurrent"])
    shoot("17-inspect-gates")

    # 9. The welcome screen and the preferences, as Help and File open them.
    from PySide6.QtWidgets import QDialog

    for name, opener in (("11-welcome", "show_welcome"), ("12-preferences", "show_preferences")):
        if not hasattr(window, opener):
            continue
        getattr(window, opener)()
        pump(0.5)
        dialogs = [w for w in app.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()]
        for dialog in dialogs:
            dialog.repaint()
            image = dialog.grab()
            path = args.out / f"{name}.png"
            image.save(str(path))
            print(f"wrote {path} ({image.width()}x{image.height()})")
            dialog.close()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

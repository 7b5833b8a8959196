"""The window refuses Start for the same reasons the trainer would refuse the run."""

from __future__ import annotations

from studio.gui.main_window import MainWindow


def test_a_model_too_large_for_memory_blocks_start_with_the_estimate(window: MainWindow) -> None:
    window.model_page.set_architecture("gpt")
    window.model_page.form.set_values({"n_layers": 2, "n_heads": 2, "d_model": 32, "context_length": 32})
    page = window.train_page
    assert page.monitor.start_button.isEnabled(), page.monitor.blocked_label.text()
    # 48 layers of width 8192: about 40 billion parameters, far beyond this machine's memory.
    window.model_page.form.set_values({"n_layers": 48, "n_heads": 64, "d_model": 8192})
    assert not page.monitor.start_button.isEnabled()
    text = page.monitor.blocked_label.text()
    assert text.startswith("Cannot start:") and "needs about" in text and "is available" in text, text
    window.model_page.form.set_values({"n_layers": 2, "n_heads": 2, "d_model": 32})
    assert page.monitor.start_button.isEnabled(), page.monitor.blocked_label.text()

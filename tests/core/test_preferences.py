"""Preferences: saved and read back, untrusted files fall back value by value, and what each
preference changes (the data folder, a run's device and threads)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from studio.core import paths
from studio.core.config import RunConfig, RunSection
from studio.core.preferences import (
    DATA_ENV,
    Preferences,
    apply_at_startup,
    load_preferences,
    preferences_path,
    read_preferences,
    save_preferences,
    use_data_folder,
)


def test_saved_preferences_come_back(tmp_path: Path) -> None:
    prefs = Preferences(data_folder=str(tmp_path / "data"), device="cpu", language="zh_CN", theme="dark",
                        plot_refresh_ms=250, cpu_threads=3, show_welcome=False)
    save_preferences(prefs)
    assert preferences_path().parent == paths.config_dir()
    assert load_preferences() == prefs
    assert not list(preferences_path().parent.glob("*.tmp"))  # written atomically, nothing left behind


def test_a_missing_file_is_the_defaults_with_no_complaint() -> None:
    assert read_preferences() == (Preferences(), [])


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "\xff\xfe", "[" * 100_000, "null"])
def test_an_unreadable_file_gives_the_defaults(content: str, caplog: pytest.LogCaptureFixture) -> None:
    preferences_path().write_bytes(content.encode("utf-8", "surrogateescape") if content != "\xff\xfe" else b"\xff\xfe\x00")
    with caplog.at_level(logging.WARNING, logger="studio.preferences"):
        prefs, reasons = read_preferences()
    assert prefs == Preferences()
    assert reasons and caplog.records, "the reason is logged"


def test_each_bad_value_falls_back_alone(caplog: pytest.LogCaptureFixture) -> None:
    preferences_path().write_text(json.dumps({
        "device": "tpu", "theme": "dark", "plot_refresh_ms": 5, "cpu_threads": True, "language": "xx",
        "data_folder": "relative/path", "show_welcome": "no", "future_setting": 1,
    }))
    with caplog.at_level(logging.WARNING, logger="studio.preferences"):
        prefs, reasons = read_preferences()
    assert prefs == Preferences(theme="dark")  # the one good value is kept
    text = " ".join(reasons)
    for key in ("device", "plot_refresh_ms", "cpu_threads", "language", "data_folder", "show_welcome", "future_setting"):
        assert key in text, key
    assert len(caplog.records) == 7


def test_device_and_threads_fill_in_what_a_run_leaves_to_studio() -> None:
    prefs = Preferences(device="cpu", cpu_threads=3)
    config = prefs.apply_to_run(RunConfig())
    assert (config.run.device, config.run.threads) == ("cpu", 3)
    explicit = RunConfig(run=RunSection(device="cuda", threads=5))
    assert prefs.apply_to_run(explicit).run == explicit.run  # the run's own choice wins
    assert Preferences().apply_to_run(explicit) is explicit


def test_the_data_folder_moves_new_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = tmp_path / "elsewhere"
    use_data_folder(str(chosen))
    assert paths.runs_dir() == chosen / "runs"
    use_data_folder("", previous=str(chosen))  # back to the default
    monkeypatch.delenv(DATA_ENV, raising=False)
    env: dict[str, str] = {DATA_ENV: "/from/the/environment"}
    use_data_folder("", previous=str(chosen), environ=env)
    assert env == {DATA_ENV: "/from/the/environment"}  # not ours: left alone
    apply_at_startup(Preferences(data_folder=str(chosen)), environ=env)
    assert env[DATA_ENV] == "/from/the/environment"  # the environment wins at startup
    apply_at_startup(Preferences(data_folder=str(chosen)))
    assert paths.data_dir() == chosen

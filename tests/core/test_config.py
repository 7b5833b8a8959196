from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.architectures import GPTConfig, LSTMConfig
from studio.core.config import RunConfig, TrainConfig, parse_override
from studio.core.errors import ConfigError
from studio.core.resources import find_config, preset_names


def test_toml_round_trip(tmp_path: Path) -> None:
    config = RunConfig().with_overrides(["train.lr=3e-4", "model.n_layers=2", 'data.paths=["a.txt", "b.txt"]'])
    path = tmp_path / "run.toml"
    config.save(path)
    text = path.read_text()
    assert "# Peak rate after warm-up." in text  # help text travels as comments
    loaded = RunConfig.load(path)
    assert loaded == config
    assert loaded.train.lr == 3e-4 and loaded.model.n_layers == 2 and loaded.data.paths == ["a.txt", "b.txt"]


def test_override_values_are_typed() -> None:
    assert parse_override("train.lr=3e-4") == ("train", "lr", 3e-4)
    assert parse_override("model.arch=lstm") == ("model", "arch", "lstm")
    assert parse_override("train.steps=100") == ("train", "steps", 100)
    assert parse_override("run.compile=true") == ("run", "compile", True)


def test_divisibility_error_names_both_keys() -> None:
    with pytest.raises(ConfigError) as e:
        RunConfig().with_overrides(["model.d_model=130", "model.n_heads=4"])
    assert "model.d_model=130 is not divisible by model.n_heads=4" in str(e.value)


def test_unknown_key_wrong_type_and_range_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[train]\nlr = "fast"\nstepz = 10\nbatch_size = 0\n[model]\narch = "gpt"\n')
    with pytest.raises(ConfigError) as e:
        RunConfig.load(path)
    text = str(e.value)
    assert str(path) in text
    assert "train.lr: expected a number, got 'fast'" in text
    assert "train.stepz: unknown setting" in text
    assert "train.batch_size=0 is below the minimum 1" in text


def test_unknown_section_architecture_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown architecture 'transformer-xl'"):
        RunConfig().with_overrides(["model.arch=transformer-xl"])
    with pytest.raises(ConfigError, match="unknown section"):
        RunConfig().with_overrides(["trian.lr=1"])
    bad = tmp_path / "broken.toml"
    bad.write_text("[train\nlr = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        RunConfig.load(bad)
    with pytest.raises(ConfigError, match="section.key=value"):
        RunConfig().with_overrides(["train.lr"])


def test_switching_architecture_keeps_shared_settings() -> None:
    config = RunConfig().with_overrides(["model.context_length=32", "model.arch=lstm"])
    assert isinstance(config.model, LSTMConfig)
    assert config.model.context_length == 32


def test_tied_lstm_needs_equal_sizes() -> None:
    with pytest.raises(ConfigError, match=r"model.tie_weights=true needs model.embedding_dim \(100\) = model.hidden_size \(200\)"):
        RunConfig().with_overrides(["model.arch=lstm", "model.embedding_dim=100", "model.hidden_size=200"])


def test_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.toml"
    path.write_text("format_version = 99\n")
    with pytest.raises(ConfigError, match="newer Studio"):
        RunConfig.load(path)


def test_field_specs_carry_form_metadata() -> None:
    specs = {s.name: s for s in TrainConfig.field_specs()}
    lr = specs["lr"]
    assert lr.key == "train.lr" and lr.kind == "float" and lr.label == "Learning rate" and lr.help
    assert specs["batch_size"].min == 1
    positions = {s.name: s for s in GPTConfig.field_specs()}["positions"]
    assert positions.kind == "choice" and positions.choices == ("learned", "rotary")


@pytest.mark.parametrize("name", preset_names())
def test_shipped_presets_are_valid(name: str) -> None:
    config = RunConfig.load(find_config(name))
    assert config.model.arch in {"rnn", "lstm", "gru", "gpt", "bert", "seq2seq"}


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru", "gpt", "bert", "seq2seq"])
def test_every_size_preset_is_a_valid_configuration(arch: str) -> None:
    """The Model page applies a preset over the architecture's defaults: each must validate
    (the recurrent "tiny" once set embedding 64 and hidden 128 with tied weights, which cannot be)."""
    from studio.core.architectures import config_class
    from studio.core.config import RunConfig

    cls = config_class(arch)
    assert cls.presets, f"{arch} has no size presets"
    for name, values in cls.presets.items():
        table = {**cls().to_dict(), **values}
        config = RunConfig.from_dict({"model": table})  # raises ConfigError, naming the key, if invalid
        assert config.model.param_count(100) > 0, (arch, name)


def test_a_setting_key_has_its_forms_label() -> None:
    """What Compare's "settings that differ" shows: the form's words, for any architecture's keys."""
    from studio.core.config import setting_label

    assert setting_label("train.lr") == "Learning rate"
    assert setting_label("model.hidden_size") == "Hidden size"  # recurrent only: found across architectures
    assert setting_label("model.arch") == "Architecture"
    assert setting_label("nonsense.key") == "nonsense.key"

"""What a fine-tuning run inherits from its base, and the vocabulary check made before Start."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.config import RunConfig
from studio.core.resources import find_config
from studio.core.training.finetune import inherit_base, vocabulary_coverage
from studio.core.training.trainer import Trainer

TINY = ["model.n_layers=1", "model.d_model=32", "model.n_heads=2", "model.context_length=32", "train.batch_size=4",
        "train.eval_interval=3", "train.eval_batches=1", "train.sample_tokens=0", "train.steps=3"]


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("bases")
    runs = {}
    for dataset in ("demo", "demo-zh"):
        config = RunConfig.load(find_config("demo-gpt"), [*TINY, f"data.dataset={dataset}", f"run.name=base-{dataset}"])
        result = Trainer(config, out=out).fit()
        assert result.status == "finished", result.error
        runs[dataset] = result.run_dir
    return runs


def test_a_fine_tune_takes_the_base_model_tokenizer_and_name(bases: dict[str, Path]) -> None:
    base = bases["demo"]
    config = RunConfig.load(find_config("finetune-demo-translate"), [f"finetune.base={base}", "model.d_model=64"])
    composed = inherit_base(config)
    base_config = RunConfig.load(base / "config.toml")
    assert composed.model == base_config.model  # the weights must fit, whatever the preset said
    assert composed.tokenizer == base_config.tokenizer
    assert composed.data == base_config.data  # a task brings its own examples
    assert composed.run.name == "base-demo-translate"  # named after its base, then the task
    assert composed.finetune.base == str(base)
    assert inherit_base(config.replace(run=config.run.__class__(name="mine"))).run.name == "mine"


def test_a_chinese_base_is_warned_about_an_english_task_before_start(bases: dict[str, Path]) -> None:
    english = RunConfig.load(find_config("finetune-demo-translate"), [f"finetune.base={bases['demo']}"])
    chinese = RunConfig.load(find_config("finetune-demo-translate"), [f"finetune.base={bases['demo-zh']}"])
    good, bad = vocabulary_coverage(english), vocabulary_coverage(chinese)
    assert good is not None and bad is not None
    assert good.unknown_share < 0.05 and good.warning() == ""
    assert bad.unknown_share > 0.5 and bad.examples == 500
    assert bad.warning().startswith(f"{bad.unknown_share:.1%} of the task's tokens are unknown")
    assert bad.missing  # it names characters the vocabulary lacks

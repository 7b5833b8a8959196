from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.core.config import RunConfig
from studio.core.models.base import estimate_training_memory
from studio.core.models.registry import ARCH_NAMES, ARCHITECTURES, build_model
from studio.core.training.trainer import Trainer

TINY = {
    "rnn": ["model.embedding_dim=48", "model.hidden_size=48", "model.num_layers=1"],
    "lstm": ["model.embedding_dim=48", "model.hidden_size=48", "model.num_layers=2"],
    "gru": ["model.embedding_dim=48", "model.hidden_size=48", "model.num_layers=1"],
    "gpt": ["model.n_layers=2", "model.n_heads=2", "model.d_model=48"],
    "bert": ["model.n_layers=2", "model.n_heads=2", "model.d_model=48"],
    "seq2seq": ["model.n_encoder_layers=1", "model.n_decoder_layers=1", "model.n_heads=2", "model.d_model=48"],
}


def tiny_config(arch: str, corpus: Path, *extra: str) -> RunConfig:
    return RunConfig().with_overrides(
        [
            f"model.arch={arch}", *TINY[arch], "model.context_length=32",
            f'data.paths=["{corpus}"]', "tokenizer.kind=char",
            "train.batch_size=16", "train.steps=60", "train.eval_interval=30", "train.eval_batches=4",
            "train.lr=5e-3", "schedule.warmup_steps=5", "train.sample_tokens=20", *extra,
        ]
    )


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize("variant", ["default", "alternative"])
def test_parameter_count_is_known_before_building(arch: str, variant: str) -> None:
    cls = ARCHITECTURES[arch].config_class
    config = cls()
    if variant == "alternative":
        alternative = {
            "rnn": {"tie_weights": False, "embedding_dim": 32, "hidden_size": 64},
            "lstm": {"num_layers": 3},
            "gru": {"tie_weights": False, "embedding_dim": 16},
            "gpt": {"positions": "rotary", "bias": True, "tie_embeddings": False, "d_ff": 100},
            "bert": {"bias": True, "d_ff": 96},
            "seq2seq": {"n_encoder_layers": 1, "n_decoder_layers": 4, "bias": True},
        }[arch]
        config = cls(**alternative)
    assert config.param_count(97) == build_model(config, 97).num_parameters()


def test_memory_estimate_grows_with_batch_and_context() -> None:
    config = ARCHITECTURES["gpt"].config_class()
    small = estimate_training_memory(config, 65, batch_size=8, seq_len=64)
    big = estimate_training_memory(config, 65, batch_size=32, seq_len=64)
    assert small.param_bytes == 4 * small.params and small.optimizer_bytes == 2 * small.param_bytes
    assert big.activation_bytes > 3 * small.activation_bytes
    assert big.total_bytes > small.total_bytes
    assert "parameters; about" in small.describe()


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_every_architecture_learns(arch: str, tiny_corpus: Path, tmp_path: Path) -> None:
    losses: list[float] = []
    evals: list[float] = []

    class Record:
        def on_event(self, event: object) -> None:
            from studio.core.events import EvalLogged, StepLogged

            if isinstance(event, StepLogged):
                losses.append(event.loss)
            elif isinstance(event, EvalLogged):
                evals.append(event.loss)

    torch.manual_seed(0)
    result = Trainer(tiny_config(arch, tiny_corpus), out=tmp_path).fit([Record()])
    assert result.status == "finished", result.error
    assert len(losses) == 60 and len(evals) == 2
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.5, (arch, first, last)
    assert evals[-1] < evals[0] or evals[-1] < first - 0.5


def test_rotary_gpt_trains(tiny_corpus: Path, tmp_path: Path) -> None:
    result = Trainer(tiny_config("gpt", tiny_corpus, "model.positions=rotary", "train.steps=30"), out=tmp_path).fit()
    assert result.status == "finished" and result.best_loss < 3.5

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from studio.core.architectures import GPTConfig, LSTMConfig
from studio.core.callbacks import FunctionCallback
from studio.core.events import StepLogged
from studio.core.models.registry import build_model
from studio.core.paths import cache_dir
from studio.core.training import mfu
from studio.core.training.trainer import Trainer
from tests.core.test_models import tiny_config


def test_flops_of_a_tiny_gpt_counted_by_hand() -> None:
    """2 layers, d=16, context 8, vocabulary 10, no biases, learned positions, no QK-norm."""
    d, layers, context, vocab = 16, 2, 8, 10
    per_layer = 4 * d * d + 2 * d * 4 * d + 2 * d  # qkv + proj, fc + out, two LayerNorm gains
    body = layers * per_layer + d  # + the final LayerNorm
    # Tied: the head multiplies by the token embedding, so it counts once; positions are a lookup.
    tied = GPTConfig(n_layers=layers, n_heads=2, d_model=d, context_length=context, tie_embeddings=True, positions="learned", qk_norm=False)
    assert mfu.matmul_parameters(build_model(tied, vocab)) == body + vocab * d == 6384
    attention = 12 * layers * d * context
    assert mfu.training_flops_per_token(build_model(tied, vocab), tied) == 6 * 6384 + attention == 41376
    # Untied: the head is its own matrix, the embedding table still a lookup: the same count.
    untied = GPTConfig(n_layers=layers, n_heads=2, d_model=d, context_length=context, tie_embeddings=False, positions="learned", qk_norm=False)
    assert mfu.matmul_parameters(build_model(untied, vocab)) == 6384


def test_recurrent_models_have_no_attention_term() -> None:
    config = LSTMConfig(embedding_dim=8, hidden_size=8, num_layers=1)
    model = build_model(config, 5)
    assert mfu.attention_flops_per_token(config) == 0
    assert mfu.training_flops_per_token(model, config) == 6 * mfu.matmul_parameters(model)


def test_mfu_arithmetic() -> None:
    assert mfu.mfu(1000.0, 500.0, 1e6) == pytest.approx(0.5)
    assert mfu.mfu(1000.0, 500.0, None) is None
    assert mfu.mfu(1000.0, 500.0, 0.0) is None


def test_peak_is_measured_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mfu, "_measured", {})
    calls: list[torch.dtype] = []

    def fake_measure(device: torch.device, dtype: torch.dtype, seconds: float = 0.15) -> float:
        calls.append(dtype)
        return 4.2e10

    monkeypatch.setattr(mfu, "measure_peak_flops", fake_measure)
    cpu = torch.device("cpu")
    assert mfu.peak_flops(cpu, 2) == 4.2e10
    assert calls == [torch.float32]
    monkeypatch.setattr(mfu, "_measured", {})  # a new process: the file answers
    assert mfu.peak_flops(cpu, 2) == 4.2e10 and len(calls) == 1
    saved = json.loads((cache_dir() / mfu.CACHE_NAME).read_text())
    assert list(saved.values()) == [4.2e10]
    assert mfu.peak_flops(torch.device("meta"), 2) is None


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"K": -5}', '{"K": "fast"}', '{"K": 1e300}', '{"K": true}'])
def test_a_damaged_cache_is_measured_again(content: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mfu, "_measured", {})
    monkeypatch.setattr(mfu, "measure_peak_flops", lambda device, dtype, seconds=0.15: 3.0e9)
    cpu = torch.device("cpu")
    key = mfu._key(cpu, torch.float32, 1)
    (cache_dir() / mfu.CACHE_NAME).write_text(content.replace('"K"', json.dumps(key)))
    assert mfu.peak_flops(cpu, 1) == 3.0e9
    assert json.loads((cache_dir() / mfu.CACHE_NAME).read_text())[key] == 3.0e9


def test_the_probe_measures_a_real_matmul() -> None:
    peak = mfu.measure_peak_flops(torch.device("cpu"), torch.float32, seconds=0.02)
    assert 1e8 < peak < 1e15


def test_training_reports_mfu(tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mfu, "_measured", {})
    monkeypatch.setattr(mfu, "measure_peak_flops", lambda device, dtype, seconds=0.15: 1e9)
    steps: list[StepLogged] = []
    config = tiny_config("gpt", tiny_corpus, "train.steps=6", "train.eval_interval=6", "train.sample_tokens=0")
    Trainer(config, out=tmp_path).fit([FunctionCallback(lambda e: steps.append(e) if isinstance(e, StepLogged) else None)])
    assert steps and all(e.mfu is not None and math.isfinite(e.mfu) and e.mfu > 0 for e in steps)
    last = steps[-1]
    per_token = last.mfu * 1e9 / last.tokens_per_s
    # 6·N + 12·L·d·T, with N between the counts for vocabularies of 1 and 200 characters
    low = mfu.training_flops_per_token(build_model(config.model, 1), config.model)
    high = mfu.training_flops_per_token(build_model(config.model, 200), config.model)
    assert low <= per_token <= high, (low, per_token, high)


def test_the_progress_line_shows_tokens_per_second_and_mfu() -> None:
    import io

    from studio.cli.progress import TerminalProgress
    from studio.core.events import RunStarted

    stream = io.StringIO()  # not a terminal: plain lines
    progress = TerminalProgress(stream)
    progress.on_event(RunStarted("", "r", "gpt", 1, 20, 0, "cpu", 1, False, ""))
    progress.on_event(StepLogged(20, 20, 1.5, 1e-3, 0.5, 12345.0, 100, 1.0, mfu=0.373))
    progress.on_event(StepLogged(20, 20, 1.5, 1e-3, 0.5, 12345.0, 100, 1.0))  # an older run's event: no MFU
    lines = [s for s in stream.getvalue().splitlines() if s.startswith("step 20/20")]
    assert "12,345 tokens/s  MFU 37%" in lines[0]
    assert "MFU" not in lines[1]


def test_the_probe_leaves_the_global_random_state_alone() -> None:
    """A run's dropout and batches must not depend on whether the peak was cached."""
    torch.manual_seed(5)
    before = torch.get_rng_state()
    mfu.measure_peak_flops(torch.device("cpu"), torch.float32, seconds=0.01)
    assert torch.equal(torch.get_rng_state(), before)

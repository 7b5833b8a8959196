"""The small-model techniques as options (issue 13, the quality ladder): RMSNorm, QK-norm, ReLU²,
zero-initialised projections, a logit soft-cap, a warm-up/stable/decay schedule and an LSTM's
LayerNorm. Each is checked for doing what it says, all of them together for training, decoding
and generating, and their absence for leaving older configs and checkpoints as they were."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from studio.core.architectures import ARCHITECTURE_CONFIGS, GPTConfig, LSTMConfig
from studio.core.config import RunConfig, ScheduleConfig
from studio.core.decoding.greedy import batched_greedy
from studio.core.events import StepLogged
from studio.core.inference.loading import load_model
from studio.core.models.gpt import GPT
from studio.core.models.registry import build_model
from studio.core.training.schedules import lr_at, lr_within_budget
from studio.core.training.trainer import Trainer
from tests.core.test_incremental_decoding import CTX, VOCAB, peaked, prompts
from tests.core.test_models import tiny_config

EVERY_TRANSFORMER_OPTION = {"norm": "rms", "qk_norm": True, "activation": "relu2", "zero_init_proj": True}
GPT_LADDER = [
    "model.positions=rotary", "model.norm=rms", "model.qk_norm=true", "model.activation=relu2",
    "model.zero_init_proj=true", "model.tie_embeddings=false", "model.logit_softcap=15",
    "schedule.decay=wsd", "schedule.decay_fraction=0.3",
]
NEW_MODEL_KEYS = ("norm", "qk_norm", "activation", "zero_init_proj", "logit_softcap", "layer_norm")


# The GPT as it was before any of the options (and a format-1 config's defaults): each test turns
# on only what it checks.
WITHOUT_OPTIONS = {"positions": "learned", "norm": "layer", "qk_norm": False, "activation": "gelu"}


def small_gpt(**options: object) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(n_layers=2, n_heads=2, d_model=32, context_length=CTX, dropout=0.0,  # type: ignore[arg-type]
                       **{**WITHOUT_OPTIONS, **options})
    return GPT(config, VOCAB).eval()


# ---- older configs build the network they built -------------------------------------------------------


def test_a_format_1_config_without_the_options_is_the_gpt_it_was() -> None:
    """Same parameters under the same names (so older checkpoints load) and the same modules,
    for a config of format 1 (every run saved before the GPT's defaults changed) that names none
    of the options; a config that gives no format, like the shipped recipes, gets the ladder's
    winners."""
    table = {"arch": "gpt", "n_layers": 2, "n_heads": 2, "d_model": 32, "context_length": CTX, "dropout": 0.0}
    old = RunConfig.from_dict({"format_version": 1, "model": dict(table)}).model
    assert (old.positions, old.norm, old.qk_norm, old.activation) == ("learned", "layer", False, "gelu")  # type: ignore[attr-defined]
    new = RunConfig.from_dict({"model": dict(table)}).model
    assert (new.positions, new.norm, new.qk_norm, new.activation) == ("rotary", "rms", True, "relu2")  # type: ignore[attr-defined]
    no_table = RunConfig.from_dict({"format_version": 1}).model  # no [model]: a GPT, as it was
    assert (no_table.norm, no_table.positions) == ("layer", "learned")  # type: ignore[attr-defined]
    kept = RunConfig.from_dict({"format_version": 1, "model": {**table, "norm": "rms"}}).model
    assert kept.norm == "rms" and kept.qk_norm is False  # type: ignore[attr-defined]  # a key it has is kept
    torch.manual_seed(0)
    model = GPT(old, VOCAB).eval()  # type: ignore[arg-type]
    assert set(model.state_dict()) == {
        "tok_emb.weight", "pos_emb.weight", "ln_f.weight", "head.weight",
        *(f"blocks.{i}.{name}" for i in range(2) for name in (
            "ln1.weight", "attn.qkv.weight", "attn.proj.weight", "ln2.weight", "mlp.fc.weight", "mlp.out.weight")),
    }
    assert not any(isinstance(m, nn.RMSNorm) for m in model.modules())
    assert all(b.attn.q_norm is None and b.mlp.activation == "gelu" for b in model.blocks)  # type: ignore[union-attr]
    assert all(float(b.attn.proj.weight.detach().abs().max()) > 0 for b in model.blocks)  # type: ignore[union-attr]
    assert model.config.logit_softcap == 0
    lstm = build_model(LSTMConfig(), VOCAB)
    assert lstm.norm is None and not any(isinstance(m, nn.LayerNorm) for m in lstm.modules())  # type: ignore[attr-defined]
    assert ScheduleConfig().decay == "cosine"


def test_an_older_run_without_the_new_keys_loads_and_generates(tiny_corpus: Path, tmp_path: Path) -> None:
    old_network = [f"model.{k}={json.dumps(v)}" for k, v in WITHOUT_OPTIONS.items()]
    result = Trainer(tiny_config("gpt", tiny_corpus, "train.steps=4", "train.eval_interval=4", *old_network), out=tmp_path).fit()
    assert result.status == "finished", result.error
    saved = result.run_dir / "checkpoints" / "last" / "config.toml"
    text = saved.read_text(encoding="utf-8")
    assert "qk_norm" in text and "decay_fraction" in text  # written now...
    older = "\n".join(line if line.split("=")[0].strip() != "format_version" else "format_version = 1"
                      for line in text.splitlines()
                      if line.split("=")[0].strip() not in (*NEW_MODEL_KEYS, "decay_fraction"))
    saved.write_text(older, encoding="utf-8")  # ...and absent from a config written before them
    commit = saved.parent / "commit.json"  # which records each file's size, as a save of then would have
    record = json.loads(commit.read_text(encoding="utf-8"))
    record["files"]["config.toml"] = saved.stat().st_size
    commit.write_text(json.dumps(record), encoding="utf-8")
    assert "qk_norm" not in saved.read_text(encoding="utf-8")
    loaded = load_model(result.run_dir, "last")
    assert (loaded.config.model.norm, loaded.config.model.qk_norm, loaded.config.model.logit_softcap) == ("layer", False, 0.0)
    assert loaded.config.schedule.decay_fraction == 0.2
    assert len(batched_greedy(loaded.model, [[10, 11, 12]], max_new_tokens=5)[0]) > 0


# ---- each option does what it says -------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["gpt", "bert", "seq2seq", "rnn", "lstm", "gru"])
def test_parameter_count_with_every_option(arch: str) -> None:
    cls = ARCHITECTURE_CONFIGS[arch]
    options: dict[str, object] = {"layer_norm": True} if arch in ("rnn", "lstm", "gru") else dict(EVERY_TRANSFORMER_OPTION)
    if arch == "gpt":
        options.update(logit_softcap=30.0, tie_embeddings=False, positions="rotary")
    for bias in (False, True):
        if arch not in ("rnn", "lstm", "gru"):
            options["bias"] = bias
        config = cls(**options)
        assert config.param_count(97) == build_model(config, 97).num_parameters(), (arch, bias)


def test_rmsnorm_scales_by_the_root_mean_square_without_centring() -> None:
    model = small_gpt(norm="rms", bias=True)  # RMSNorm has no shift even with biases on
    norms = [m for m in model.modules() if isinstance(m, (nn.LayerNorm, nn.RMSNorm))]
    assert len(norms) == 2 * 2 + 1 and all(isinstance(m, nn.RMSNorm) for m in norms)
    x = torch.randn(3, 32) + 5.0  # far from zero mean: LayerNorm would remove it
    expected = x / x.pow(2).mean(-1, keepdim=True).sqrt()
    torch.testing.assert_close(model.blocks[0].ln1(x), expected, atol=1e-5, rtol=1e-5)  # type: ignore[operator]
    assert float(model.blocks[0].ln1(x).detach().mean()) > 0.5  # type: ignore[operator]  # the mean stays


@torch.no_grad()
def test_qk_norm_makes_attention_blind_to_the_scale_of_queries_and_keys() -> None:
    """With QK-norm, scaling the query and key weights by 10 changes nothing; without it the
    attention pattern, so the output, changes."""
    x = torch.randn(2, 10, 32, generator=torch.Generator().manual_seed(0))
    for qk_norm in (True, False):
        attn = small_gpt(qk_norm=qk_norm).blocks[0].attn
        before = attn(x, causal=True)
        attn.qkv.weight[: 2 * 32] *= 10.0  # type: ignore[index]  # the q and k rows, not v
        after = attn(x, causal=True)
        assert torch.allclose(before, after, atol=1e-4) == qk_norm
    assert isinstance(small_gpt(qk_norm=True).blocks[0].attn.q_norm, nn.RMSNorm)


@torch.no_grad()
def test_relu2_mlp_is_relu_squared() -> None:
    mlp = small_gpt(activation="relu2").blocks[0].mlp
    x = torch.randn(4, 32)
    h = mlp.fc(x)  # type: ignore[operator]
    assert (h < 0).any()
    torch.testing.assert_close(mlp(x), mlp.out(torch.relu(h) ** 2))  # type: ignore[operator]
    assert not torch.allclose(small_gpt().blocks[0].mlp(x), mlp(x))


def test_zero_init_starts_every_layer_as_the_identity() -> None:
    model = small_gpt(zero_init_proj=True).train()
    for block in model.blocks:
        assert float(block.attn.proj.weight.detach().abs().max()) == 0.0  # type: ignore[union-attr]
        assert float(block.mlp.out.weight.detach().abs().max()) == 0.0  # type: ignore[union-attr]
        assert float(block.mlp.fc.weight.detach().abs().max()) > 0.0  # type: ignore[union-attr]  # only the projections
    idx = torch.randint(7, VOCAB, (2, 12))
    with torch.no_grad():
        embedded = model.tok_emb(idx) + model.pos_emb(torch.arange(12))  # type: ignore[misc]
        torch.testing.assert_close(model.hidden(idx), model.ln_f(embedded))
    model.training_loss(torch.randint(7, VOCAB, (2, CTX + 1))).backward()
    assert all(float(b.attn.proj.weight.grad.abs().max()) > 0 for b in model.blocks)  # type: ignore[union-attr]  # they learn


@torch.no_grad()
def test_logit_softcap_bounds_training_and_decoding_logits() -> None:
    cap = 2.0
    model = small_gpt(logit_softcap=cap)
    model.head.weight.mul_(200.0)  # raw logits far beyond the cap (tied: the embedding grows too)
    idx = torch.tensor(prompts([12])[0])[None]
    raw = model.head(model.hidden(idx))
    assert float(raw.abs().max()) > 10 * cap
    logits = model(idx)
    assert float(logits.abs().max()) <= cap
    torch.testing.assert_close(logits, cap * torch.tanh(raw / cap))
    decoder = model.make_decoder()  # the cached decoder applies it as training did
    step = decoder.begin([idx[0, :5].tolist()])
    torch.testing.assert_close(step, logits[:, 4])
    torch.testing.assert_close(decoder.step(idx[0, 5:6]), logits[:, 5])


@torch.no_grad()
def test_every_option_decodes_the_same_with_and_without_the_cache() -> None:
    """The key-value cache (self- and cross-attention, QK-normed keys kept) and the LSTM's carried
    state through its LayerNorm change how fast a model decodes, not what it writes."""
    gpt = peaked(small_gpt(**EVERY_TRANSFORMER_OPTION, positions="rotary", logit_softcap=5.0, tie_embeddings=False))
    batch = prompts([1, 3, 9, 12, 15, 16])
    assert batched_greedy(gpt, batch, max_new_tokens=10) == batched_greedy(gpt, batch, max_new_tokens=10, use_cache=False)  # type: ignore[arg-type]
    seq2seq = peaked(build_model(ARCHITECTURE_CONFIGS["seq2seq"](
        n_encoder_layers=2, n_decoder_layers=2, n_heads=2, d_model=32, context_length=CTX, dropout=0.0, **EVERY_TRANSFORMER_OPTION), VOCAB))
    assert batched_greedy(seq2seq, batch[:4], 12) == batched_greedy(seq2seq, batch[:4], 12, use_cache=False)  # type: ignore[arg-type]
    lstm = peaked(build_model(LSTMConfig(embedding_dim=24, hidden_size=24, num_layers=2, context_length=CTX, dropout=0.0, layer_norm=True), VOCAB))
    carried = batched_greedy(lstm, batch[:4], max_new_tokens=6)  # type: ignore[arg-type]
    assert carried == batched_greedy(lstm, batch[:4], max_new_tokens=6, use_cache=False)  # type: ignore[arg-type]
    assert any(len(row) == 6 for row in carried)


@torch.no_grad()
def test_lstm_layer_norm_normalizes_what_the_head_reads() -> None:
    torch.manual_seed(0)
    model = build_model(LSTMConfig(embedding_dim=24, hidden_size=24, num_layers=2, dropout=0.0, layer_norm=True), VOCAB).eval()
    assert isinstance(model.norm, nn.LayerNorm)  # type: ignore[attr-defined]
    idx = torch.randint(7, VOCAB, (2, 9))
    features = model.features(idx)  # type: ignore[operator]
    torch.testing.assert_close(features.mean(-1), torch.zeros(2, 9), atol=1e-5, rtol=0)
    torch.testing.assert_close(features.std(-1, unbiased=False), torch.ones(2, 9), atol=0.01, rtol=0)  # eps shrinks it a little
    raw, _ = model.rnn(model.embed(idx))  # type: ignore[operator]
    assert float(raw.std()) < 0.5  # an LSTM's outputs are small at init; the norm rescales them
    groups = model.layer_groups()  # type: ignore[operator]
    assert any(p is model.norm.weight for p in groups[-1])  # type: ignore[attr-defined]  # frozen last, with the head


# ---- warm-up, stable, decay --------------------------------------------------------------------------


def test_wsd_holds_the_peak_then_falls_linearly_to_the_floor() -> None:
    schedule = ScheduleConfig(warmup_steps=100, decay="wsd", decay_fraction=0.2, min_lr_ratio=0.1)
    total, peak = 1101, 1.0  # steps 100 to 1100 after warm-up: the decay is the last 200 of them, from 900
    lrs = [lr_at(s, peak, total, schedule) for s in range(total)]
    assert lrs[99] == pytest.approx(peak) and lrs[49] == pytest.approx(0.5)  # warm-up
    assert all(lr == pytest.approx(peak) for lr in lrs[100:901])  # stable
    assert lrs[1000] == pytest.approx(peak - 0.9 * 0.5)  # halfway down the decay
    assert lrs[-1] == pytest.approx(0.1)  # the floor at the last step
    slopes = [b - a for a, b in zip(lrs[900:], lrs[901:], strict=False)]
    assert all(d == pytest.approx(-0.9 / 200) for d in slopes)  # a straight line
    assert ScheduleConfig(decay="wsd", decay_fraction=0.0).decay_fraction == 0.0
    assert lr_at(500, peak, total, ScheduleConfig(warmup_steps=100, decay="wsd", decay_fraction=0.0)) == peak


def test_wsd_under_a_time_budget_follows_the_share_used() -> None:
    schedule = ScheduleConfig(warmup_steps=10, decay="wsd", decay_fraction=0.2, min_lr_ratio=0.1)
    at = [lr_within_budget(50, used, 1.0, 10**6, schedule) for used in (0.3, 0.8, 0.9, 1.0)]
    assert at == pytest.approx([1.0, 1.0, 1.0 - 0.9 * 0.5, 0.1])
    assert lr_within_budget(4, 0.5, 1.0, 10**6, schedule) == pytest.approx(0.5)  # warming up
    assert lr_within_budget(4, 0.99, 1.0, 10**6, schedule) < 0.5  # the decay wins over a late warm-up


def test_an_unknown_decay_is_refused() -> None:
    from studio.core.errors import ConfigError

    with pytest.raises(ConfigError, match="schedule.decay"):
        RunConfig.from_dict({"schedule": {"decay": "step"}})
    with pytest.raises(ConfigError, match="schedule.decay_fraction"):
        RunConfig.from_dict({"schedule": {"decay": "wsd", "decay_fraction": 1.5}})


# ---- all together, trained ------------------------------------------------------------------------


def losses_of(config: RunConfig, out: Path) -> tuple[list[float], list[float], Path]:
    losses: list[float] = []
    rates: list[float] = []

    class Record:
        def on_event(self, event: object) -> None:
            if isinstance(event, StepLogged):
                losses.append(event.loss)
                rates.append(event.lr)

    torch.manual_seed(0)
    result = Trainer(config, out=out).fit([Record()])
    assert result.status == "finished", result.error
    return losses, rates, result.run_dir


def test_a_gpt_with_every_option_trains_and_generates(tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from studio.cli.main import main

    config = tiny_config("gpt", tiny_corpus, *GPT_LADDER, "train.steps=30", "train.eval_interval=30")
    losses, rates, run = losses_of(config, tmp_path / "runs")
    assert len(losses) == 30
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.5, (first, last)
    peak = config.train.lr
    assert rates[4:20] == pytest.approx([peak] * 16)  # stable after the 5 warm-up steps...
    assert rates[-1] == pytest.approx(peak * config.schedule.min_lr_ratio)  # ...then down to the floor
    loaded = load_model(run, "last")
    assert loaded.config.model.logit_softcap == 15.0 and loaded.config.model.qk_norm
    with torch.no_grad():
        assert float(loaded.model(torch.randint(7, 30, (2, 20))).abs().max()) <= 15.0  # type: ignore[operator]
    assert main(["generate", str(run), "--prompt", "One morning", "--max-tokens", "30", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("One morning") and len(text) > len("One morning")


def test_an_lstm_with_layer_norm_trains(tiny_corpus: Path, tmp_path: Path) -> None:
    losses, _, run = losses_of(tiny_config("lstm", tiny_corpus, "model.layer_norm=true", "train.steps=30", "train.eval_interval=30"), tmp_path)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.5, (first, last)
    assert math.isfinite(last)
    loaded = load_model(run, "last")
    assert loaded.config.model.layer_norm  # type: ignore[attr-defined]
    assert len(batched_greedy(loaded.model, [[10, 11, 12]], max_new_tokens=5)[0]) > 0

"""What each architecture is, without building it: its settings, size presets, exact parameter count
and training-memory estimate, looked up by name.

The networks themselves (``studio.core.models``, one file per architecture) need PyTorch; this
module does not, so reading a config, drawing the Model page's form and counting parameters are
instant, and ``studio.core.config`` can look up ``[model] arch = "gpt"`` without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from studio.core.errors import ConfigIssue
from studio.core.i18n import N_, _
from studio.core.settings import ModelConfig, setting

# Bytes of optimizer state per parameter, in units of the parameter itself.
_OPTIMIZER_SLOTS = {"adamw": 2, "adam": 2, "sgd": 1, "muon": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    """Training memory, estimated from the config before anything is allocated."""

    params: int
    param_bytes: int
    grad_bytes: int
    optimizer_bytes: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.param_bytes + self.grad_bytes + self.optimizer_bytes + self.activation_bytes

    def breakdown(self) -> str:
        """The parts without the total, for a sentence that already says it."""
        # Translators: {params} is a count of parameters; the rest are sizes such as "1.2 GiB".
        return _("{params:,} parameters: weights {weights}, gradients {gradients}, optimizer {optimizer}, "
                 "activations {activations}").format(
            params=self.params, weights=human_bytes(self.param_bytes), gradients=human_bytes(self.grad_bytes),
            optimizer=human_bytes(self.optimizer_bytes), activations=human_bytes(self.activation_bytes),
        )

    def describe(self) -> str:
        # Translators: a memory estimate; {total} and the parts are sizes such as "1.2 GiB".
        return _(
            "{params:,} parameters; about {total} to train "
            "(weights {weights}, gradients {gradients}, optimizer {optimizer}, activations {activations})"
        ).format(
            params=self.params, total=human_bytes(self.total_bytes), weights=human_bytes(self.param_bytes),
            gradients=human_bytes(self.grad_bytes), optimizer=human_bytes(self.optimizer_bytes),
            activations=human_bytes(self.activation_bytes),
        )


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def estimate_training_memory(
    config: ModelConfig, vocab_size: int, batch_size: int, seq_len: int | None = None, optimizer: str = "adamw"
) -> MemoryEstimate:
    """Weights + gradients + optimizer state + activations kept for backward, all fp32."""
    seq_len = seq_len or config.context_length
    params = config.param_count(vocab_size)
    return MemoryEstimate(
        params=params,
        param_bytes=4 * params,
        grad_bytes=4 * params,
        optimizer_bytes=4 * params * _OPTIMIZER_SLOTS.get(optimizer, 2),
        activation_bytes=config.activation_bytes(batch_size, seq_len, vocab_size),
    )


# ---- Transformers ----------------------------------------------------------------------------


# One definition per technique setting, so the GPT can default to other values than the encoders.
def _norm_setting(default: str) -> Any:
    return setting(
        default, label=N_("Normalization"),
        help=N_("layer: LayerNorm (centres and scales each vector). rms: RMSNorm (scales by the root mean square only), a little cheaper."),
        choice_labels={"layer": N_("LayerNorm"), "rms": N_("RMSNorm")}, advanced=True,
    )


def _qk_norm_setting(default: bool) -> Any:
    return setting(
        default, label=N_("QK norm"),
        help=N_("RMSNorm on each head's queries and keys before attention: keeps attention scores in range, so higher learning rates stay stable."),
        advanced=True,
    )


def _activation_setting(default: str) -> Any:
    return setting(
        default, label=N_("MLP activation"), help=N_("gelu: GELU. relu2: ReLU squared (ReLU²), sparser and often better in small models."),
        choice_labels={"gelu": N_("GELU"), "relu2": N_("ReLU²")}, advanced=True,
    )


@dataclass
class TransformerConfig(ModelConfig):
    """Width and attention settings common to every Transformer here."""

    d_model: int = setting(128, label=N_("Width (d_model)"), help=N_("Size of each token's vector in every layer."), min=8, max=65536)
    n_heads: int = setting(4, label=N_("Attention heads"), help=N_("d_model is split evenly across the heads."), min=1, max=512)
    d_ff: int = setting(0, label=N_("Feed-forward width"), help=N_("Hidden width of each layer's MLP; 0 means 4 x d_model."), min=0, max=1_000_000)
    bias: bool = setting(False, label=N_("Biases"), help=N_("Biases in linear layers and LayerNorms. Off is slightly faster and trains as well."), advanced=True)
    # The small-model techniques below default to the original GPT-2 recipe here, so configs
    # written before they existed (no such keys) build the same encoder and encoder-decoder. The
    # GPT defaults to the winners of benchmarks/ladder.py instead (see GPTConfig).
    norm: Literal["layer", "rms"] = _norm_setting("layer")
    qk_norm: bool = _qk_norm_setting(False)
    activation: Literal["gelu", "relu2"] = _activation_setting("gelu")
    zero_init_proj: bool = setting(
        False, label=N_("Zero-init projections"),
        help=N_("Start the attention and MLP output projections at zero, so every layer begins as the identity."),
        advanced=True,
    )

    @property
    def ff_width(self) -> int:
        return self.d_ff or 4 * self.d_model

    def check(self) -> list[ConfigIssue]:
        if self.d_model % self.n_heads:
            return [
                ConfigIssue(
                    # Translators: model.d_model and model.n_heads are setting names, kept as is.
                    "model.d_model", _("model.d_model={d_model} is not divisible by model.n_heads={n_heads}").format(
                        d_model=self.d_model, n_heads=self.n_heads
                    )
                )
            ]
        return []

    # ---- parameter arithmetic shared by the three architectures -----------------------------

    def _ln(self) -> int:
        # RMSNorm has a scale and never a shift.
        return self.d_model * (2 if self.bias and self.norm == "layer" else 1)

    def _attn(self) -> int:
        d = self.d_model
        qk_norms = 2 * (d // self.n_heads) if self.qk_norm else 0  # one RMSNorm scale for q, one for k, shared by the heads
        return 4 * d * d + (4 * d if self.bias else 0) + qk_norms

    def _mlp(self) -> int:
        d, ff = self.d_model, self.ff_width
        return 2 * d * ff + ((ff + d) if self.bias else 0)

    def _layer_activation_floats(self, batch_size: int, seq_len: int) -> int:
        bt = batch_size * seq_len
        # Saved for backward per token: norms, q/k/v, attention output, MLP in/out.
        per_token = 10 * self.d_model + 2 * self.ff_width + (2 * self.d_model if self.qk_norm else 0)
        # The CPU's math path keeps the attention matrix; fused GPU kernels do not.
        attention = 2 * batch_size * self.n_heads * seq_len * seq_len
        return bt * per_token + attention


@dataclass
class GPTConfig(TransformerConfig):
    arch: ClassVar[str] = "gpt"
    label: ClassVar[str] = N_("GPT-style decoder")
    objective: ClassVar[str] = "causal"  # type: ignore[assignment]
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"n_layers": 2, "n_heads": 2, "d_model": 64, "context_length": 64},
        "small": {"n_layers": 4, "n_heads": 4, "d_model": 128, "context_length": 64},
        "medium": {"n_layers": 6, "n_heads": 6, "d_model": 384, "context_length": 256},
    }

    # The winners of the quality ladder (benchmarks/ladder.py, README): on the baby Shakespeare GPT,
    # RoPE, RMSNorm, QK-norm and ReLU² together took the validation loss from 1.784 to 1.690 at equal
    # steps. A run's config.toml keeps every key, so runs made under the old defaults resume as made.
    norm: Literal["layer", "rms"] = _norm_setting("rms")
    qk_norm: bool = _qk_norm_setting(True)
    activation: Literal["gelu", "relu2"] = _activation_setting("relu2")
    n_layers: int = setting(4, label=N_("Layers"), help=N_("Stacked Transformer layers."), min=1, max=256)
    positions: Literal["learned", "rotary"] = setting(
        "rotary", label=N_("Positions"), help=N_("learned: a vector per position. rotary: rotate queries and keys by position (RoPE)."),
        choice_labels={"learned": N_("learned"), "rotary": N_("rotary (RoPE)")},
    )
    tie_embeddings: bool = setting(True, label=N_("Tie embeddings"), help=N_("Share the token embedding with the output layer."))
    logit_softcap: float = setting(
        0.0, label=N_("Logit soft-cap"),
        help=N_("If above 0, the output logits are squashed smoothly into ±cap (cap · tanh(logit / cap)), in training and "
                "generation alike; 15 to 30 is usual. 0 turns it off."),
        min=0.0, max=1000.0, advanced=True,
    )

    def check(self) -> list[ConfigIssue]:
        issues = super().check()
        if not issues and self.positions == "rotary" and (self.d_model // self.n_heads) % 2:
            issues.append(
                ConfigIssue(
                    "model.positions",
                    # Translators: model.d_model and model.n_heads are setting names, kept as is.
                    _("rotary positions need an even head size; model.d_model/model.n_heads = {head_size}").format(
                        head_size=self.d_model // self.n_heads
                    ),
                )
            )
        return issues

    def param_count(self, vocab_size: int) -> int:
        d = self.d_model
        total = vocab_size * d
        if self.positions == "learned":
            total += self.context_length * d
        total += self.n_layers * (self._attn() + self._mlp() + 2 * self._ln())
        total += self._ln()
        if not self.tie_embeddings:
            total += vocab_size * d
        return total

    def activation_bytes(self, batch_size: int, seq_len: int, vocab_size: int) -> int:
        floats = self.n_layers * self._layer_activation_floats(batch_size, seq_len)
        floats += batch_size * seq_len * (2 * self.d_model + 3 * vocab_size)
        return 4 * floats


@dataclass
class BERTConfig(TransformerConfig):
    arch: ClassVar[str] = "bert"
    label: ClassVar[str] = N_("BERT-style encoder")
    objective: ClassVar[str] = "masked"  # type: ignore[assignment]
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"n_layers": 2, "n_heads": 2, "d_model": 64, "context_length": 64},
        "small": {"n_layers": 4, "n_heads": 4, "d_model": 128, "context_length": 128},
        "medium": {"n_layers": 6, "n_heads": 8, "d_model": 384, "context_length": 256},
    }

    n_layers: int = setting(4, label=N_("Layers"), help=N_("Stacked Transformer layers."), min=1, max=256)
    mask_prob: float = setting(
        0.15, label=N_("Mask rate"), help=N_("Share of tokens hidden for the model to predict (80% <mask>, 10% random, 10% kept)."), min=0.01, max=0.9
    )

    def param_count(self, vocab_size: int) -> int:
        d = self.d_model
        total = vocab_size * d + self.context_length * d + self._ln()  # embeddings + embedding norm
        total += self.n_layers * (self._attn() + self._mlp() + 2 * self._ln())
        total += self._ln()  # final norm
        total += d * d + d + self._ln() + vocab_size  # MLM transform, its norm, output bias (weights tied)
        return total

    def activation_bytes(self, batch_size: int, seq_len: int, vocab_size: int) -> int:
        floats = self.n_layers * self._layer_activation_floats(batch_size, seq_len)
        floats += batch_size * seq_len * (4 * self.d_model + 3 * vocab_size)
        return 4 * floats


@dataclass
class Seq2SeqConfig(TransformerConfig):
    arch: ClassVar[str] = "seq2seq"
    label: ClassVar[str] = N_("Encoder-decoder Transformer")
    objective: ClassVar[str] = "seq2seq"  # type: ignore[assignment]
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"n_encoder_layers": 2, "n_decoder_layers": 2, "n_heads": 2, "d_model": 64, "context_length": 64},
        "small": {"n_encoder_layers": 3, "n_decoder_layers": 3, "n_heads": 4, "d_model": 128, "context_length": 128},
        "medium": {"n_encoder_layers": 6, "n_decoder_layers": 6, "n_heads": 8, "d_model": 512, "context_length": 256},
    }

    n_encoder_layers: int = setting(3, label=N_("Encoder layers"), help=N_("Layers reading the source."), min=1, max=256)
    n_decoder_layers: int = setting(3, label=N_("Decoder layers"), help=N_("Layers writing the target."), min=1, max=256)

    def param_count(self, vocab_size: int) -> int:
        d = self.d_model
        total = vocab_size * d + 2 * self.context_length * d  # shared token embedding, two position tables
        total += self.n_encoder_layers * (self._attn() + self._mlp() + 2 * self._ln()) + self._ln()
        total += self.n_decoder_layers * (2 * self._attn() + self._mlp() + 3 * self._ln()) + self._ln()
        return total  # the output layer is tied to the embedding

    def activation_bytes(self, batch_size: int, seq_len: int, vocab_size: int) -> int:
        half = max(1, seq_len // 2)
        floats = self.n_encoder_layers * self._layer_activation_floats(batch_size, half)
        floats += self.n_decoder_layers * (
            self._layer_activation_floats(batch_size, half) + batch_size * half * 6 * self.d_model
        )
        floats += batch_size * half * 3 * vocab_size
        return 4 * floats


# ---- recurrent networks ----------------------------------------------------------------------

# Embedding and hidden sizes are equal in every preset: the output layer is tied to the embedding
# by default, which needs them to match.
_RECURRENT_PRESETS = {
    "tiny": {"embedding_dim": 96, "hidden_size": 96, "num_layers": 1, "context_length": 64},
    "small": {"embedding_dim": 224, "hidden_size": 224, "num_layers": 2, "context_length": 64},
    "medium": {"embedding_dim": 512, "hidden_size": 512, "num_layers": 3, "context_length": 128},
}


@dataclass
class RecurrentConfig(ModelConfig):
    gates: ClassVar[int] = 1
    presets: ClassVar[dict[str, dict[str, Any]]] = _RECURRENT_PRESETS

    embedding_dim: int = setting(224, label=N_("Embedding size"), help=N_("Width of each token's vector."), min=1, max=65536)
    hidden_size: int = setting(224, label=N_("Hidden size"), help=N_("Width of the recurrent state."), min=1, max=65536)
    num_layers: int = setting(2, label=N_("Layers"), help=N_("Stacked recurrent layers."), min=1, max=64)
    tie_weights: bool = setting(
        True, label=N_("Tie weights"), help=N_("Share the input embedding with the output layer (needs embedding size = hidden size).")
    )
    layer_norm: bool = setting(
        False, label=N_("Layer norm"), help=N_("LayerNorm on the last layer's output, before the output layer."), advanced=True
    )

    def check(self) -> list[ConfigIssue]:
        if self.tie_weights and self.embedding_dim != self.hidden_size:
            return [
                ConfigIssue(
                    "model.tie_weights",
                    # Translators: the model.* words are setting names and "true" their value, kept as is.
                    _("model.tie_weights=true needs model.embedding_dim ({embedding_dim}) = model.hidden_size ({hidden_size})").format(
                        embedding_dim=self.embedding_dim, hidden_size=self.hidden_size
                    ),
                )
            ]
        return []

    def param_count(self, vocab_size: int) -> int:
        g, h = self.gates, self.hidden_size
        total = vocab_size * self.embedding_dim
        for layer in range(self.num_layers):
            inp = self.embedding_dim if layer == 0 else h
            total += g * h * (inp + h) + 2 * g * h
        total += vocab_size  # output bias
        if self.layer_norm:
            total += 2 * h
        if not self.tie_weights:
            total += vocab_size * h
        return total

    def activation_bytes(self, batch_size: int, seq_len: int, vocab_size: int) -> int:
        bt = batch_size * seq_len
        per_layer = bt * self.hidden_size * (2 * self.gates + 2)
        logits = 3 * bt * vocab_size  # logits, their softmax and its gradient
        norm = 2 * bt * self.hidden_size if self.layer_norm else 0
        return 4 * (bt * self.embedding_dim + self.num_layers * per_layer + norm + logits)


@dataclass
class RNNConfig(RecurrentConfig):
    arch: ClassVar[str] = "rnn"
    label: ClassVar[str] = N_("RNN (tanh)")
    gates: ClassVar[int] = 1


@dataclass
class LSTMConfig(RecurrentConfig):
    arch: ClassVar[str] = "lstm"
    label: ClassVar[str] = N_("LSTM")
    gates: ClassVar[int] = 4


@dataclass
class GRUConfig(RecurrentConfig):
    arch: ClassVar[str] = "gru"
    label: ClassVar[str] = N_("GRU")
    gates: ClassVar[int] = 3


# ---- by name ----------------------------------------------------------------------------------

ARCHITECTURE_CONFIGS: dict[str, type[ModelConfig]] = {
    c.arch: c for c in (RNNConfig, LSTMConfig, GRUConfig, GPTConfig, BERTConfig, Seq2SeqConfig)
}
ARCH_NAMES: tuple[str, ...] = tuple(ARCHITECTURE_CONFIGS)


def config_class(arch: str) -> type[ModelConfig]:
    return ARCHITECTURE_CONFIGS[arch]

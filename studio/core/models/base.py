"""What every architecture provides to the trainer, the generators and the forms.

A model turns a batch of contiguous token windows (shape ``[B, T+1]``) into its own training loss,
so the trainer never needs to know whether it is driving an LSTM, a GPT, a masked-LM encoder or an
encoder-decoder. Causal models also expose an incremental decoding interface used for streaming
generation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from studio.core.settings import ModelConfig

IGNORE_INDEX = -100

class LanguageModel(nn.Module):
    """Base class: holds the config and vocabulary size, and answers size questions."""

    config: ModelConfig

    def __init__(self, config: ModelConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size

    def num_parameters(self) -> int:
        # Tied weights are one tensor, so unique storage is what counts.
        seen: set[int] = set()
        total = 0
        for p in self.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
        return total

    def training_loss(self, windows: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Mean loss over a batch of windows of ``context_length + 1`` tokens."""
        raise NotImplementedError

    # ---- for task heads (classification, extractive QA) -----------------------------------

    @property
    def feature_size(self) -> int:
        """Width of the vectors ``features`` returns."""
        raise NotImplementedError

    def features(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Per-token hidden states [B, T, feature_size] (True or 1 in the mask = a real token)."""
        raise NotImplementedError

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters from the input upwards: embeddings first, then one group per layer. Freezing
        "the first N layers" freezes the first N + 1 groups."""
        raise NotImplementedError

    # ---- decoding ----------------------------------------------------------------------------

    def logits(self, idx: Tensor) -> Tensor:
        """Next-token logits [B, T, V] of a causal model (recurrent models also return a state)."""
        out = self(idx)
        assert isinstance(out, Tensor)
        return out

    def make_decoder(self, use_cache: bool = True) -> Decoder:
        """A decoder for batches of prompts. By default every step re-reads the last
        ``context_length`` tokens; architectures that can do better (a key-value cache, a carried
        recurrent state, an encoder read once) return their own. ``use_cache=False`` always
        re-reads, which the tests use to show that the shortcut changes nothing."""
        return RereadingDecoder(self)


class Decoder:
    """Continues a batch of prompts one token per row per step: the one interface the samplers,
    greedy and beam search (``studio.core.decoding``) drive, whatever the architecture.

    ``begin`` reads the prompts and returns each row's next-token logits [N, V]; ``step`` appends
    one token per row and returns the next logits; ``keep`` keeps (or reorders, or repeats) rows,
    as finished rows leave a batch and beam search follows the beams it keeps.
    """

    max_new: int | None = None  # the most tokens this model may write (None: no limit of its own)

    def begin(self, prompts: list[list[int]]) -> Tensor:
        raise NotImplementedError

    def step(self, tokens: Tensor) -> Tensor:
        raise NotImplementedError

    def keep(self, rows: Tensor) -> None:
        raise NotImplementedError


def right_padded(seqs: list[list[int]], pad: int = 0) -> tuple[Tensor, Tensor]:
    """Sequences padded on the right into one [N, longest] tensor (on the CPU), and their lengths."""
    lengths = torch.tensor([len(s) for s in seqs])
    idx = torch.full((len(seqs), int(lengths.max())), pad, dtype=torch.long)
    for row, s in enumerate(seqs):
        idx[row, : len(s)] = torch.tensor(s)
    return idx, lengths


class RereadingDecoder(Decoder):
    """Each step re-reads each row's last ``context_length`` tokens (right-padded, logits taken at
    the row's own last token, so padding never affects a prediction). Works for any causal model;
    the cost of a step grows with the text, which the architectures' own decoders avoid."""

    def __init__(self, model: LanguageModel, seqs: list[list[int]] | None = None):
        self.model = model
        self.ctx = model.config.context_length
        self.device = next(model.parameters()).device
        self.seqs: list[list[int]] = seqs or []

    def _read(self) -> Tensor:
        windows = [s[-self.ctx :] for s in self.seqs]
        idx, lengths = right_padded(windows)
        logits = self.model.logits(idx.to(self.device))
        return logits[torch.arange(len(windows), device=self.device), (lengths - 1).to(self.device)]

    def begin(self, prompts: list[list[int]]) -> Tensor:
        self.seqs = [list(p) for p in prompts]
        return self._read()

    def step(self, tokens: Tensor) -> Tensor:
        for seq, token in zip(self.seqs, tokens.tolist(), strict=True):
            seq.append(token)
        return self._read()

    def keep(self, rows: Tensor) -> None:
        self.seqs = [list(self.seqs[r]) for r in rows.tolist()]


def causal_lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """GPT-2 style: normal(0, 0.02) for linear and embedding weights, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=std)

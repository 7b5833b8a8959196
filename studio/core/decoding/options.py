"""How to decode: the one settings type the CLI (`studio generate`), the Try panel, the samples
written during training and the task runner all use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from studio.core.i18n import _

DEFAULT_MAX_NEW_TOKENS = 200


@dataclass(frozen=True)
class DecodingSettings:
    mode: Literal["greedy", "beam", "sample"] = "sample"
    temperature: float = 0.8  # sampling only; 0 would mean greedy
    top_k: int = 0  # 0: no limit
    top_p: float = 1.0  # 1: no nucleus cut
    beam_size: int = 4
    length_penalty: float = 1.0  # beam: scores divided by length ** this
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    stop_at_eos: bool = True
    seed: int | None = None  # None: a fresh random seed

    def validate(self) -> None:
        if self.mode not in ("greedy", "beam", "sample"):
            # Translators: greedy, beam and sample are the modes' names, kept as is.
            raise ValueError(_("decoding mode must be greedy, beam or sample (got {mode})").format(mode=repr(self.mode)))
        if self.temperature < 0:
            raise ValueError(_("temperature must be 0 (greedy) or more"))
        if not 0 < self.top_p <= 1:
            # Translators: top_p is a setting's name, kept as is.
            raise ValueError(_("top_p must be in (0, 1]"))
        if self.top_k < 0 or self.max_new_tokens < 0:
            # Translators: top_k is a setting's name, kept as is.
            raise ValueError(_("top_k and the token limit must not be negative"))
        if self.mode == "beam" and self.beam_size < 1:
            raise ValueError(_("beam search needs at least one beam"))

    @property
    def greedy(self) -> bool:
        return self.mode == "greedy" or (self.mode == "sample" and self.temperature == 0)

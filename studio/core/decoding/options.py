"""How to decode: the one settings type the CLI (`studio generate`), the Try panel, the samples
written during training and the task runner all use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from studio.core.i18n import N_, _

DEFAULT_MAX_NEW_TOKENS = 200

# What each decoding setting does, for the Try panel's tooltips and the CLI's help (English;
# translated where shown).
HELP = {
    "mode": N_("greedy: always the likeliest token (the same answer every time); beam: keeps the likeliest few "
               "sequences and returns the best whole one; sample: draws each token at random by its probability."),
    "beam_size": N_("How many candidate sequences beam search keeps at each step. More beams find likelier text, "
                    "slower; 4 is typical."),
    "temperature": N_("Divides the scores before sampling: below 1 makes the likely tokens likelier (safer, more "
                      "repetitive), above 1 flattens the choice (more varied, more mistakes)."),
    "top_k": N_("Sample only among the k likeliest tokens; 0 turns the limit off. 20-50 cuts off the unlikely tail."),
    "top_p": N_("Nucleus sampling: sample only among the likeliest tokens whose probabilities add up to p; 1 turns "
                "it off. 0.9 is typical."),
    "max_new_tokens": N_("The most tokens to write. Generation also stops at the end-of-text token."),
    "seed": N_("The same seed samples the same text; 0 draws a new one each time."),
}


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

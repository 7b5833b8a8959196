"""Bits per character and bits per byte: a validation loss that runs with different tokenizers share.

A loss is nats per *token*, and a token is a character, a word or a subword depending on the
tokenizer, so the losses of a char run and a BPE run on the same text cannot be compared. Divided
by the characters (or UTF-8 bytes) each token stands for, they can:

    bits per character = total nats over the validation split / (ln 2 x its characters)
                       = loss / (ln 2 x characters per token)

where characters per token is the validation split's characters over its tokens, both counted
exactly when the token cache is built (``SplitStats.characters``, ``SplitStats.bytes``,
``SplitStats.tokens``; the tokens include the end-of-document tokens the cache adds, which are
predicted like any other). The characters are those of the source text, which is what the tokens
decode back to for the character and BPE tokenizers; the word tokenizer's decoded text differs in
its spacing, so the source text's count is the one that keeps it comparable with the others.
"""

from __future__ import annotations

import math


def units_per_token(units: int, tokens: int) -> float | None:
    """Characters (or bytes) per token of a split; None when it holds none."""
    return units / tokens if units > 0 and tokens > 0 else None


def bits_per_unit(loss: float | None, per_token: float | None) -> float | None:
    """A loss in nats per token as bits per character (or byte); None when either is unknown."""
    if loss is None or per_token is None or not math.isfinite(loss) or per_token <= 0:
        return None
    return loss / (math.log(2) * per_token)

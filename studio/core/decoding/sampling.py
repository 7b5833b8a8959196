"""Streaming text out of a model one token at a time: greedy or sampled (temperature, top-k, top-p).

Sampling draws from its own ``torch.Generator``, so generating a sample in the middle of training
never disturbs the training run's random state (and so never breaks exact resume).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from studio.core.data.special_tokens import EOS_ID, NUM_SPECIAL
from studio.core.data.tokenizers import Tokenizer
from studio.core.decoding.options import DecodingSettings
from studio.core.models.base import LanguageModel

DEFAULT = DecodingSettings()


@dataclass(frozen=True)
class GeneratedToken:
    token_id: int
    text: str  # the new text this token completes (may be "" while a multi-byte character is pending)
    probability: float  # under the distribution it was drawn from


def ban_specials(logits: Tensor) -> Tensor:
    """Logits with every special token but <eos> made impossible: a model never writes <pad>,
    <bos> or <mask>, and <eos> may end the text."""
    allowed = torch.arange(logits.size(-1), device=logits.device)
    banned = (allowed < NUM_SPECIAL) & (allowed != EOS_ID)
    return logits.masked_fill(banned, float("-inf"))


def filter_logits(logits: Tensor, top_k: int, top_p: float) -> Tensor:
    """Keep the k most likely tokens and the smallest set with cumulative probability >= p."""
    if top_k > 0 and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1, None]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative - sorted_logits.softmax(dim=-1) >= top_p  # keep the token that crosses p
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def sampling_probabilities(logits: Tensor, settings: DecodingSettings) -> Tensor:
    """The distribution a sampled token is drawn from, for rows of logits [..., V]: specials
    banned, divided by the temperature, then the top-k and top-p cuts. The one place this is
    done: ``stream_tokens`` draws from it and the Inspect view (``inference.insight``) shows it,
    so what a person sees is what sampling would do. Not for greedy settings (temperature 0)."""
    return filter_logits(ban_specials(logits.float()) / settings.temperature, settings.top_k, settings.top_p).softmax(-1)


class TextAssembler:
    """The text each new token adds. Byte-level BPE can split a character across tokens, so text
    is held back until it decodes whole."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.tokens: list[int] = []
        self.shown = ""

    def add(self, token: int) -> str:
        self.tokens.append(token)
        text = self.tokenizer.decode(self.tokens)
        if text.endswith("\ufffd"):
            return ""
        delta, self.shown = text[len(self.shown) :], text
        return delta


def prompt_ids_of(tokenizer: Tokenizer, prompt: str | list[int]) -> list[int]:
    # Documents in the training stream are separated by <eos>, so an empty prompt starts after
    # one: "the beginning of a document".
    if isinstance(prompt, list):
        return prompt or [EOS_ID]
    return (tokenizer.encode(prompt) if prompt else []) or [EOS_ID]


@torch.no_grad()
def stream_tokens(model: LanguageModel, tokenizer: Tokenizer, prompt: str | list[int],
                  settings: DecodingSettings = DEFAULT) -> Iterator[GeneratedToken]:
    """Yield generated tokens one by one, with the text each adds; greedy or sampled as
    ``settings`` say (beam search is ``studio.core.decoding.beam``). Stops at <eos> if asked.

    ``prompt`` is text, or ids already encoded (task templates encode their parts separately)."""
    settings.validate()
    was_training = model.training
    model.eval()
    generator = torch.Generator(device="cpu")
    if settings.seed is not None:
        generator.manual_seed(settings.seed)
    else:
        generator.seed()
    device = next(model.parameters()).device
    try:
        decoder = model.make_decoder()
        logits = decoder.begin([prompt_ids_of(tokenizer, prompt)])
        text = TextAssembler(tokenizer)
        for _ in range(settings.max_new_tokens):
            step = ban_specials(logits[0].float())
            if settings.greedy:
                token = int(step.argmax())
                probability = float(step.softmax(-1)[token])
            else:
                probs = sampling_probabilities(logits[0], settings).cpu()
                token = int(torch.multinomial(probs, 1, generator=generator))
                probability = float(probs[token])
            if token == EOS_ID and settings.stop_at_eos:
                return
            yield GeneratedToken(token, text.add(token), probability)
            logits = decoder.step(torch.tensor([token], device=device))
    finally:
        model.train(was_training)


def generate_text(model: LanguageModel, tokenizer: Tokenizer, prompt: str | list[int],
                  settings: DecodingSettings = DEFAULT) -> str:
    return "".join(t.text for t in stream_tokens(model, tokenizer, prompt, settings))

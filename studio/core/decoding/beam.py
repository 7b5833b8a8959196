"""Beam search for every architecture that writes text, through its decoder: the beams batch as
rows, and a key-value cache (or a recurrent state) follows the beams that are kept. Each beam
carries the log-probability of every token it wrote, so the answer streams with its confidence
without a second pass through the model (that pass, one row at a time, had been a third of the
Try panel's beam-search time)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.nn import functional as F

from studio.core.data.special_tokens import EOS_ID
from studio.core.data.tokenizers import Tokenizer
from studio.core.decoding.sampling import GeneratedToken, TextAssembler, ban_specials
from studio.core.models.base import LanguageModel

# Tokens written so far, their summed log-probability, and each token's own log-probability.
Beam = tuple[list[int], float, list[float]]


def expand_beams(beams: list[Beam], logp: Tensor, beam_size: int, finished: list[Beam]) -> tuple[list[Beam], list[int]]:
    """One step of beam search: extend each beam by each token (log-probabilities ``logp``
    [beams, V]; special tokens other than <eos> are never written) and keep the ``beam_size``
    best. Hypotheses ending in <eos> go to ``finished``. Returns the kept beams and, for each,
    the index of the beam it extends (the decoder follows these)."""
    logp = ban_specials(logp)
    scores = torch.tensor([s for _, s, _ in beams], device=logp.device)[:, None] + logp
    top = torch.topk(scores.view(-1), min(2 * beam_size, scores.numel()))
    kept: list[Beam] = []
    origins: list[int] = []
    for score, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        b, token = divmod(flat, logp.size(1))
        seq, before, steps = beams[b]
        item = (seq + [token], score, steps + [score - before])
        if token == EOS_ID:
            finished.append(item)
        else:
            kept.append(item)
            origins.append(b)
        if len(kept) == beam_size:
            break
    return kept, origins


def _normalised(item: Beam, length_penalty: float) -> float:
    seq, score, _ = item
    return score / max(1, len(seq)) ** length_penalty


def beam_search(model: LanguageModel, prompt: list[int], beam_size: int = 4, max_new: int = 64,
                length_penalty: float = 1.0, use_cache: bool = True) -> list[int]:
    """The best continuation (without <eos>) of ``prompt``; see ``scored_beam_search``."""
    return [token for token, _ in scored_beam_search(model, prompt, beam_size, max_new, length_penalty, use_cache)]


@torch.no_grad()
def scored_beam_search(model: LanguageModel, prompt: list[int], beam_size: int = 4, max_new: int = 64,
                       length_penalty: float = 1.0, use_cache: bool = True) -> list[tuple[int, float]]:
    """The best continuation of ``prompt`` (an encoder-decoder's source) as (token, probability
    under the model given the tokens before it) pairs, without <eos>. Scores are
    log-probabilities divided by length ** ``length_penalty`` so longer hypotheses are not
    unfairly punished. The search ends when no beam is left, at the length limit, or once
    ``beam_size`` hypotheses have finished and the best of them beats every live beam."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        decoder = model.make_decoder(use_cache)
        limit = max_new if decoder.max_new is None else min(max_new, decoder.max_new)
        logp = F.log_softmax(decoder.begin([list(prompt) or [EOS_ID]]).float(), dim=-1)
        beams: list[Beam] = [([], 0.0, [])]
        finished: list[Beam] = []
        for _ in range(limit):
            beams, origins = expand_beams(beams, logp, beam_size, finished)
            if not beams:
                break
            if len(finished) >= beam_size and max(_normalised(f, length_penalty) for f in finished) >= max(
                _normalised(b, length_penalty) for b in beams
            ):
                break
            decoder.keep(torch.tensor(origins, device=device))
            logp = F.log_softmax(decoder.step(torch.tensor([seq[-1] for seq, _, _ in beams], device=device)).float(), dim=-1)
        seq, _, steps = max(finished or beams or [([], 0.0, [])], key=lambda item: _normalised(item, length_penalty))
        return [(token, math.exp(token_logp)) for token, token_logp in zip(seq, steps, strict=True) if token != EOS_ID]
    finally:
        model.train(was_training)


def stream_answer(tokenizer: Tokenizer, answer: list[tuple[int, float]]) -> Iterator[GeneratedToken]:
    """A beam search's answer token by token with each token's probability (how the Try panel
    streams it and shades its doubtful tokens)."""
    text = TextAssembler(tokenizer)
    for token, p in answer:
        yield GeneratedToken(token, text.add(token), p)

"""Beam search for every architecture that writes text, through its decoder: the beams batch as
rows, and a key-value cache (or a recurrent state) follows the beams that are kept."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.nn import functional as F

from studio.core.data.special_tokens import EOS_ID
from studio.core.data.tokenizers import Tokenizer
from studio.core.decoding.sampling import GeneratedToken, TextAssembler, ban_specials
from studio.core.models.base import LanguageModel

Beam = tuple[list[int], float]  # tokens written so far, summed log-probability


def expand_beams(beams: list[Beam], logp: Tensor, beam_size: int, finished: list[Beam]) -> tuple[list[Beam], list[int]]:
    """One step of beam search: extend each beam by each token (log-probabilities ``logp``
    [beams, V]; special tokens other than <eos> are never written) and keep the ``beam_size``
    best. Hypotheses ending in <eos> go to ``finished``. Returns the kept beams and, for each,
    the index of the beam it extends (the decoder follows these)."""
    logp = ban_specials(logp)
    scores = torch.tensor([s for _, s in beams], device=logp.device)[:, None] + logp
    top = torch.topk(scores.view(-1), min(2 * beam_size, scores.numel()))
    kept: list[Beam] = []
    origins: list[int] = []
    for score, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        b, token = divmod(flat, logp.size(1))
        seq = beams[b][0] + [token]
        if token == EOS_ID:
            finished.append((seq, score))
        else:
            kept.append((seq, score))
            origins.append(b)
        if len(kept) == beam_size:
            break
    return kept, origins


def _normalised(item: Beam, length_penalty: float) -> float:
    seq, score = item
    return score / max(1, len(seq)) ** length_penalty


@torch.no_grad()
def beam_search(model: LanguageModel, prompt: list[int], beam_size: int = 4, max_new: int = 64,
                length_penalty: float = 1.0, use_cache: bool = True) -> list[int]:
    """The best continuation (without <eos>) of ``prompt`` (an encoder-decoder's source). Scores
    are log-probabilities divided by length ** ``length_penalty`` so longer hypotheses are not
    unfairly punished. The search ends when no beam is left, at the length limit, or once
    ``beam_size`` hypotheses have finished and the best of them beats every live beam."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        decoder = model.make_decoder(use_cache)
        limit = max_new if decoder.max_new is None else min(max_new, decoder.max_new)
        logp = F.log_softmax(decoder.begin([list(prompt) or [EOS_ID]]).float(), dim=-1)
        beams: list[Beam] = [([], 0.0)]
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
            logp = F.log_softmax(decoder.step(torch.tensor([b[-1] for b, _ in beams], device=device)).float(), dim=-1)
        best = max(finished or beams or [([], 0.0)], key=lambda item: _normalised(item, length_penalty))[0]
        return [t for t in best if t != EOS_ID]
    finally:
        model.train(was_training)


@torch.no_grad()
def replay(model: LanguageModel, tokenizer: Tokenizer, prompt: list[int], tokens: list[int]) -> Iterator[GeneratedToken]:
    """Yield an already decided sequence token by token, with each token's probability under the
    model (how the Try panel streams a beam search's answer and shades its doubtful tokens)."""
    device = next(model.parameters()).device
    decoder = model.make_decoder()
    logits = decoder.begin([prompt or [EOS_ID]])
    text = TextAssembler(tokenizer)
    for token in tokens:
        p = float(F.softmax(logits[0].float(), dim=-1)[token])
        yield GeneratedToken(token, text.add(token), p)
        logits = decoder.step(torch.tensor([token], device=device))

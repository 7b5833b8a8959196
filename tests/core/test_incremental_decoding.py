"""The key-value cache (Transformers) and the carried state (recurrent models) must change how
fast a model decodes, never what it decodes.

Models here get large random weights (std 0.5) so their next-token distributions are peaked and a
greedy choice never hangs on a rounding difference between the two paths.
"""

from __future__ import annotations

import pytest
import torch

from studio.core.architectures import GPTConfig, Seq2SeqConfig, config_class
from studio.core.data.special_tokens import BOS_ID, NUM_SPECIAL
from studio.core.decoding.beam import beam_search, scored_beam_search
from studio.core.decoding.greedy import batched_greedy
from studio.core.models.gpt import GPT
from studio.core.models.registry import build_model
from studio.core.models.seq2seq import Seq2SeqTransformer

VOCAB = 40
CTX = 16


def peaked(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.5)
    return model.eval()


def gpt(positions: str) -> GPT:
    # The GPT-2 layers (these tests were written on them, and their peaked weights keep answers
    # within the context); decoding is the same code for every norm and activation.
    config = GPTConfig(n_layers=2, n_heads=2, d_model=32, context_length=CTX, dropout=0.0, positions=positions,  # type: ignore[arg-type]
                       norm="layer", qk_norm=False, activation="gelu")
    return peaked(GPT(config, VOCAB))  # type: ignore[return-value]


def seq2seq() -> Seq2SeqTransformer:
    config = Seq2SeqConfig(n_encoder_layers=2, n_decoder_layers=2, n_heads=2, d_model=32, context_length=CTX, dropout=0.0)
    return peaked(Seq2SeqTransformer(config, VOCAB))  # type: ignore[return-value]


def prompts(lengths: list[int]) -> list[list[int]]:
    g = torch.Generator().manual_seed(1)
    return [torch.randint(NUM_SPECIAL, VOCAB, (n,), generator=g).tolist() for n in lengths]


@pytest.mark.parametrize("positions", ["learned", "rotary"])
@torch.no_grad()
def test_incremental_gpt_logits_match_rereading_the_window(positions: str) -> None:
    model = gpt(positions)
    tokens = prompts([CTX + 8])[0]  # runs past the context, onto the re-reading path
    decoder = model.make_decoder()
    logits = decoder.begin([tokens[:3]])
    for n in range(3, len(tokens)):
        expected = model(torch.tensor([tokens[max(0, n - CTX) : n]]))[:, -1, :]
        torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
        assert (decoder.rereading is None) == (n <= CTX)  # cached while the text fits the context
        logits = decoder.step(torch.tensor([tokens[n]]))


@torch.no_grad()
def test_incremental_seq2seq_logits_match_rereading_the_target() -> None:
    model = seq2seq()
    src, tgt = prompts([7, CTX + 4])
    decoder = model.make_decoder()
    logits = decoder.begin([src])
    memory = model.encode(torch.tensor([src]))
    for n in range(len(tgt)):
        written = torch.tensor([[BOS_ID, *tgt[:n]]])[:, -CTX:]
        torch.testing.assert_close(logits, model.decode(written, memory)[:, -1, :], atol=1e-4, rtol=1e-4)
        assert (decoder.cache is not None) == (written.size(1) == n + 1)  # cached while the target fits
        logits = decoder.step(torch.tensor([tgt[n]]))


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_batched_greedy_gpt_is_the_same_with_and_without_the_cache(positions: str) -> None:
    model = gpt(positions)
    batch = prompts([1, 3, 9, 12, 15, 16])  # ragged, and some reach the end of the context
    cached = batched_greedy(model, batch, max_new_tokens=10)
    plain = batched_greedy(model, batch, max_new_tokens=10, use_cache=False)
    assert cached == plain
    assert any(len(row) == 10 for row in cached)  # not all stopped at once by <eos>


def test_batched_greedy_seq2seq_is_the_same_with_and_without_the_cache() -> None:
    model = seq2seq()
    batch = prompts([2, 5, 11, 16])
    assert batched_greedy(model, batch, 12) == batched_greedy(model, batch, 12, use_cache=False)


def test_beam_search_follows_its_beams_through_the_cache() -> None:
    causal = gpt("learned")
    for prompt in prompts([2, 6, 13]):
        assert beam_search(causal, prompt, 3, 8) == beam_search(causal, prompt, 3, 8, use_cache=False)
    encoder_decoder = seq2seq()
    for src in prompts([3, 9]):
        assert beam_search(encoder_decoder, src, 3, 10) == beam_search(encoder_decoder, src, 3, 10, use_cache=False)


def test_a_beam_answers_probabilities_are_the_models_own() -> None:
    """Each token's probability that the Try panel shades comes from the search itself; it must
    equal what the model gives that token when it reads the prompt and the answer before it."""
    causal = gpt("rotary")
    checked = 0
    for prompt in prompts([2, 3, 5, 6, 9, 13]):
        answer = scored_beam_search(causal, prompt, 3, 8)
        tokens = [token for token, _ in answer]
        assert tokens == beam_search(causal, prompt, 3, 8)
        checked += len(tokens)
        with torch.no_grad():
            logits = causal(torch.tensor([prompt + tokens]))[0].float()
        expected = [float(torch.softmax(logits[len(prompt) - 1 + i], dim=-1)[token]) for i, token in enumerate(tokens)]
        assert [p for _, p in answer] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert checked >= 10  # answers that end at once (in <eos>) would check nothing


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_batched_greedy_recurrent_carries_state_like_rereading(arch: str) -> None:
    config = config_class(arch)(embedding_dim=24, hidden_size=24, num_layers=2, context_length=CTX, dropout=0.0)  # type: ignore[call-arg]
    model = peaked(build_model(config, VOCAB))
    batch = prompts([1, 4, 7, 10])  # ragged; prompt + new tokens stay within the context
    carried = batched_greedy(model, batch, max_new_tokens=6)  # type: ignore[arg-type]
    assert carried == batched_greedy(model, batch, max_new_tokens=6, use_cache=False)  # type: ignore[arg-type]
    assert any(len(row) == 6 for row in carried)

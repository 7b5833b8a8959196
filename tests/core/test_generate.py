from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.core.architectures import GPTConfig, Seq2SeqConfig
from studio.core.data.special_tokens import EOS_ID
from studio.core.data.tokenizers.char import CharTokenizer
from studio.core.decoding.beam import beam_search
from studio.core.decoding.masks import fill_mask
from studio.core.decoding.options import DecodingSettings
from studio.core.decoding.sampling import filter_logits, generate_text, stream_tokens
from studio.core.inference.loading import load_model
from studio.core.models.base import Decoder, LanguageModel
from studio.core.models.gpt import GPT
from studio.core.models.seq2seq import Seq2SeqTransformer
from studio.core.training.trainer import Trainer
from tests.core.test_models import tiny_config


def test_top_k_keeps_k_best() -> None:
    logits = torch.tensor([1.0, 5.0, 3.0, 4.0, 2.0])
    kept = filter_logits(logits, top_k=2, top_p=1.0)
    assert torch.isfinite(kept).tolist() == [False, True, False, True, False]


def test_top_p_keeps_the_smallest_nucleus() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    kept = filter_logits(probs.log(), top_k=0, top_p=0.7)
    assert torch.isfinite(kept).tolist() == [True, True, False, False]  # 0.5 < 0.7, 0.5+0.3 crosses it
    kept = filter_logits(probs.log(), top_k=0, top_p=0.5)
    assert torch.isfinite(kept).tolist() == [True, False, False, False]


class ScriptedLM(LanguageModel):
    """Always predicts the next id of a fixed script: checks the streaming loop, not a network."""

    def __init__(self, script: list[int], vocab: int):
        super().__init__(GPTConfig(), vocab)
        self.script = script
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def _logits(self, position: int) -> torch.Tensor:
        out = torch.full((1, self.vocab_size), -1e9)
        out[0, self.script[min(position, len(self.script) - 1)]] = 0.0
        return out

    def make_decoder(self, use_cache: bool = True) -> Decoder:
        model = self

        class Scripted(Decoder):
            position = 0

            def begin(self, prompts: list[list[int]]) -> torch.Tensor:
                return model._logits(0)

            def step(self, tokens: torch.Tensor) -> torch.Tensor:
                self.position += 1
                return model._logits(self.position)

        return Scripted()


def test_streaming_yields_token_by_token_and_stops_at_eos() -> None:
    tok = CharTokenizer(list("abc"))
    a, b, c = tok.encode("abc")
    model = ScriptedLM([a, b, c, EOS_ID, a], tok.vocab_size)
    steps = list(stream_tokens(model, tok, "", DecodingSettings(max_new_tokens=10, temperature=0)))
    assert [s.text for s in steps] == ["a", "b", "c"]
    assert all(s.probability == pytest.approx(1.0) for s in steps)
    longer = generate_text(model, tok, "x", DecodingSettings(max_new_tokens=10, temperature=0, stop_at_eos=False))
    assert longer == "abcaaaaaa"  # <eos> renders as nothing; 10 tokens in all


def test_sampling_is_seeded_and_does_not_touch_global_rng() -> None:
    torch.manual_seed(0)
    tok = CharTokenizer(list("abcdefgh"))
    model = GPT(GPTConfig(n_layers=1, n_heads=2, d_model=16, context_length=8), tok.vocab_size)
    before = torch.get_rng_state()
    s = DecodingSettings(max_new_tokens=20, temperature=1.0, seed=5)
    first, second = generate_text(model, tok, "ab", s), generate_text(model, tok, "ab", s)
    assert first == second and len(first) > 0
    assert torch.equal(before, torch.get_rng_state())


def test_seq2seq_learns_to_copy_and_beam_search_decodes() -> None:
    torch.manual_seed(0)
    vocab = 7 + 6
    model = Seq2SeqTransformer(Seq2SeqConfig(n_encoder_layers=1, n_decoder_layers=1, n_heads=2, d_model=32, context_length=12), vocab)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        src = torch.randint(7, vocab, (32, 5))
        tgt = torch.cat([src, torch.full((32, 1), EOS_ID)], dim=1)
        tgt_in = torch.cat([torch.full((32, 1), 2), tgt[:, :-1]], dim=1)
        loss = torch.nn.functional.cross_entropy(model(src, tgt_in).reshape(-1, vocab), tgt.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    src = [8, 12, 9, 7, 11]
    assert beam_search(model, src, beam_size=1, max_new=10) == src
    assert beam_search(model, src, beam_size=3, max_new=10) == src


def test_trained_models_generate_and_fill_masks(tiny_corpus: Path, tmp_path: Path) -> None:
    gpt = Trainer(tiny_config("gpt", tiny_corpus, "train.steps=40"), out=tmp_path / "g").fit()
    loaded = load_model(gpt.run_dir)
    text = generate_text(loaded.model, loaded.tokenizer, "One morning", DecodingSettings(max_new_tokens=30, seed=1))
    assert 0 < len(text) <= 30

    bert = Trainer(tiny_config("bert", tiny_corpus, "train.steps=40"), out=tmp_path / "b").fit()
    loaded = load_model(bert.run_dir)
    options = fill_mask(loaded.model, loaded.tokenizer, "One m<mask>rning", top_k=3)
    assert len(options) == 1 and len(options[0]) == 3
    assert all(0 <= p <= 1 for _, p in options[0])

"""Using a trained or fine-tuned model for what it was trained for: the engine of the Try panel.

A ``TaskRunner`` wraps a loaded checkpoint, knows its task and prompt template (saved with the
run), and answers: classify a text, translate, summarize, answer a question (extractive or
generative), or continue a prompt. Generation streams token by token, with greedy, beam or
sampled decoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F

from studio.core.data.special_tokens import EOS_ID
from studio.core.decoding.generate import (
    GeneratedToken,
    SamplingSettings,
    beam_search,
    expand_beams,
    stream_tokens,
)
from studio.core.inference.loading import LoadedModel
from studio.core.models.base import LanguageModel
from studio.core.models.gpt import GPT
from studio.core.models.seq2seq import Seq2SeqTransformer
from studio.core.models.transformer_layers import KVCache
from studio.core.tasks.heads import ClassifierModel, SpanQAModel
from studio.core.tasks.token_ids import inputs_of, prompt_ids

Tab = Literal["translate", "ask", "summarize", "classify", "generate"]
TAB_TASK: dict[str, str] = {"translate": "translate", "ask": "qa", "summarize": "summarize", "classify": "classify", "generate": "lm"}
TASK_NAMES = {"lm": "free text generation", "translate": "translation", "qa": "question answering",
              "summarize": "summarization", "classify": "classification"}


@dataclass(frozen=True)
class Decoding:
    mode: Literal["greedy", "beam", "sample"] = "greedy"
    beam_size: int = 4
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    max_tokens: int = 64
    seed: int | None = None


class TaskRunner:
    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self.config = loaded.config
        self.kind = loaded.config.task.kind
        self.tokenizer = loaded.tokenizer
        self.model = loaded.model
        base = getattr(self.model, "base", self.model)
        assert isinstance(base, LanguageModel)
        self.lm = base

    def supports(self, tab: Tab) -> tuple[bool, str]:
        """Whether this model can do what the tab asks, and if not, what to do instead."""
        wanted = TAB_TASK[tab]
        if wanted == "lm":
            if self.config.model.objective == "masked" and self.kind == "lm":
                return False, "BERT-style encoders fill in masked words rather than write text. Fine-tune it for classification or extractive QA on the Fine-tune page."
            if isinstance(self.model, ClassifierModel | SpanQAModel):
                return False, f"This model was fine-tuned for {TASK_NAMES[self.kind]} and has lost its text output. Try it in the matching tab."
            return True, ""
        if self.kind != wanted:
            return False, (
                f"This model was trained for {TASK_NAMES[self.kind]}, not {TASK_NAMES[wanted]}. "
                f"Fine-tune it for {TASK_NAMES[wanted]} on the Fine-tune page first."
            )
        return True, ""

    # ---- answers that are not free text -------------------------------------------------------

    @torch.no_grad()
    def classify(self, text: str) -> list[tuple[str, float]]:
        """Every label with its probability, most likely first."""
        assert isinstance(self.model, ClassifierModel)
        device = next(self.model.parameters()).device
        ids = self.tokenizer.encode(text)[: self.lm.config.context_length] or [EOS_ID]
        idx = torch.tensor([ids], device=device)
        probs = F.softmax(self.model(idx, torch.ones_like(idx, dtype=torch.bool)).float(), dim=-1)[0]
        labels = self.loaded.checkpoint.labels
        return sorted(((labels[i], float(p)) for i, p in enumerate(probs)), key=lambda x: -x[1])

    def extract(self, context: str, question: str) -> str:
        from studio.core.training.task_workload import extract_answer

        assert isinstance(self.model, SpanQAModel)
        return extract_answer(self.model, self.tokenizer, context, question)

    # ---- text out ------------------------------------------------------------------------------

    def stream(self, tab: Tab, decoding: Decoding, *, text: str = "", context: str = "", question: str = "") -> Iterator[GeneratedToken]:
        """Tokens of the answer as they are decided. ``text`` is the source, document or prompt."""
        ok, why = self.supports(tab)
        if not ok:
            raise ValueError(why)
        if tab == "classify":
            label, p = self.classify(text)[0]
            yield GeneratedToken(-1, label, p)
            return
        if tab == "ask" and isinstance(self.model, SpanQAModel):
            yield GeneratedToken(-1, self.extract(context, question), 1.0)
            return
        if tab == "generate":
            ids: list[int] = self.tokenizer.encode(text) if text else []
        else:
            kind = TAB_TASK[tab]
            from studio.core.training.task_workload import causal_target_budget

            ctx = self.lm.config.context_length
            budget = ctx if isinstance(self.lm, Seq2SeqTransformer) else ctx - causal_target_budget(ctx, self.loaded.checkpoint.max_target_tokens)
            ids = prompt_ids(self.tokenizer, kind, self.config.task.template, inputs_of(kind, context or text, question), budget)
        if decoding.mode == "beam":
            yield from self._beam(ids, decoding)
            return
        settings = SamplingSettings(
            max_new_tokens=decoding.max_tokens,
            temperature=0.0 if decoding.mode == "greedy" else decoding.temperature,
            top_k=decoding.top_k, top_p=decoding.top_p, seed=decoding.seed,
        )
        yield from stream_tokens(self.lm, self.tokenizer, ids, settings)

    def _beam(self, ids: list[int], decoding: Decoding) -> Iterator[GeneratedToken]:
        if isinstance(self.lm, Seq2SeqTransformer):
            best = beam_search(self.lm, ids, beam_size=decoding.beam_size, max_len=decoding.max_tokens)
        else:
            best = causal_beam_search(self.lm, ids, decoding.beam_size, decoding.max_tokens)
        yield from _replay(self.lm, self.tokenizer, ids, best)


@torch.no_grad()
def causal_beam_search(
    model: LanguageModel,
    prompt: list[int],
    beam_size: int,
    max_new: int,
    length_penalty: float = 1.0,
    use_cache: bool = True,
) -> list[int]:
    """Beam search for decoder-only and recurrent models (all beams share a length, so they batch)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ctx = model.config.context_length
    beams: list[tuple[list[int], float]] = [(list(prompt) or [EOS_ID], 0.0)]
    start = len(beams[0][0])
    finished: list[tuple[list[int], float]] = []
    # A GPT keeps a key-value cache that follows the beams kept, until the beams reach the end of
    # the context; from there (and for recurrent models) each step re-reads the last window.
    cache = KVCache(len(model.blocks)) if use_cache and isinstance(model, GPT) and start < ctx else None
    try:
        for _ in range(max_new):
            length = len(beams[0][0])
            if cache is not None and length > ctx:
                cache = None
            if isinstance(model, GPT) and cache is not None:
                if cache.length == 0:
                    hidden = model.hidden(torch.tensor([beams[0][0]], device=device), cache=cache)
                else:
                    last = torch.tensor([[b[-1]] for b, _ in beams], device=device)
                    positions = torch.full_like(last, length - 1)
                    hidden = model.hidden(last, positions, cache)
                logits = model.head(hidden[:, -1:, :])
            else:
                logits = model(torch.tensor([b[-ctx:] for b, _ in beams], device=device))
                if isinstance(logits, tuple):
                    logits = logits[0]
            beams, origins = expand_beams(beams, F.log_softmax(logits[:, -1, :].float(), dim=-1), beam_size, finished)
            if not beams:
                break
            if cache is not None:
                cache.select(torch.tensor(origins, device=device))

        def norm(item: tuple[list[int], float]) -> float:
            return item[1] / max(1, len(item[0]) - start) ** length_penalty

        best = max(finished or beams, key=norm)[0]
        return [t for t in best[start:] if t != EOS_ID]
    finally:
        model.train(was_training)


@torch.no_grad()
def _replay(model: LanguageModel, tokenizer: object, prompt: list[int], tokens: list[int]) -> Iterator[GeneratedToken]:
    """Yield a decided sequence token by token, with each token's probability under the model."""
    from studio.core.data.tokenizers import Tokenizer

    assert isinstance(tokenizer, Tokenizer)
    device = next(model.parameters()).device
    logits, state = model.start_decoding(torch.tensor([prompt or [EOS_ID]], device=device))
    shown = ""
    for k, token in enumerate(tokens):
        p = float(F.softmax(logits[0].float(), dim=-1)[token])
        text = tokenizer.decode(tokens[: k + 1])
        delta = ""
        if not text.endswith("\ufffd"):
            delta, shown = text[len(shown) :], text
        yield GeneratedToken(token, delta, p)
        logits, state = model.continue_decoding(torch.tensor([token], device=device), state)

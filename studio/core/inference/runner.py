"""Using a trained or fine-tuned model for what it was trained for: the engine of the Try panel.

A ``TaskRunner`` wraps a loaded checkpoint, knows its task and prompt template (saved with the
run), and answers: classify a text, translate, summarize, answer a question (extractive or
generative), or continue a prompt. Generation streams token by token, with greedy, beam or
sampled decoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
from torch.nn import functional as F

from studio.core.data.special_tokens import EOS_ID
from studio.core.decoding.beam import scored_beam_search, stream_answer
from studio.core.decoding.options import DecodingSettings
from studio.core.decoding.sampling import GeneratedToken, stream_tokens
from studio.core.i18n import N_, _
from studio.core.inference.loading import LoadedModel
from studio.core.models.base import LanguageModel
from studio.core.tasks.heads import ClassifierModel, SpanQAModel
from studio.core.tasks.token_ids import inputs_of, prompt_ids
from studio.core.training.task_workload import causal_target_budget, extract_answer

Tab = Literal["translate", "ask", "summarize", "classify", "generate"]
TAB_TASK: dict[str, str] = {"translate": "translate", "ask": "qa", "summarize": "summarize", "classify": "classify", "generate": "lm"}
# English, marked for translation: shown as _(TASK_NAMES[kind]).
TASK_NAMES = {"lm": N_("free text generation"), "translate": N_("translation"), "qa": N_("question answering"),
              "summarize": N_("summarization"), "classify": N_("classification")}


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
                # Translators: "Fine-tune" is the name of a page of the window.
                return False, _("BERT-style encoders fill in masked words rather than write text. "
                                "Fine-tune it for classification or extractive QA on the Fine-tune page.")
            if isinstance(self.model, ClassifierModel | SpanQAModel):
                # Translators: {task} is what the model does ("classification", "question answering").
                message = _("This model was fine-tuned for {task} and has lost its text output. Try it in the matching tab.")
                return False, message.format(task=_(TASK_NAMES[self.kind]))
            return True, ""
        if self.kind != wanted:
            # Translators: {task} and {wanted} are what models do ("translation", "summarization"); "Fine-tune" is a page.
            message = _("This model was trained for {task}, not {wanted}. Fine-tune it for {wanted} on the Fine-tune page first.")
            return False, message.format(task=_(TASK_NAMES[self.kind]), wanted=_(TASK_NAMES[wanted]))
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
        assert isinstance(self.model, SpanQAModel)
        return extract_answer(self.model, self.tokenizer, context, question)

    # ---- text out ------------------------------------------------------------------------------

    def stream(self, tab: Tab, decoding: DecodingSettings, *, text: str = "", context: str = "", question: str = "") -> Iterator[GeneratedToken]:
        """Tokens of the answer as they are decided. ``text`` is the source, document or prompt."""
        ok, why = self.supports(tab)
        if not ok:
            raise ValueError(why)
        decoding.validate()
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
            ctx = self.lm.config.context_length
            # An encoder-decoder reads the whole context as its source; a decoder-only model keeps
            # room for the answer, cut exactly as in training.
            budget = ctx if self.lm.config.objective == "seq2seq" else ctx - causal_target_budget(ctx, self.loaded.checkpoint.max_target_tokens)
            ids = prompt_ids(self.tokenizer, kind, self.config.task.template, inputs_of(kind, context or text, question), budget)
        if decoding.mode == "beam":
            best = scored_beam_search(self.lm, ids, decoding.beam_size, decoding.max_new_tokens, decoding.length_penalty)
            yield from stream_answer(self.tokenizer, best)
            return
        yield from stream_tokens(self.lm, self.tokenizer, ids, decoding)

"""Fine-tuning on labelled examples: batches, losses and metrics for each kind of task.

| task | model | input | loss |
|---|---|---|---|
| classify | any, with a classifier on mean-pooled states | the text | cross-entropy over labels |
| qa (extractive) | any, with start/end scores per token | question <sep> context window | start + end cross-entropy |
| translate, summarize, qa (generative) | decoder-only | template prompt + target + <eos> | next token, on the target only |
| the same | encoder-decoder | prompt as source; target | next token of the target |

Metrics at each evaluation come from decoding ``task.eval_examples`` validation examples (greedy);
after training, the best checkpoint is scored on the whole validation and test splits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from studio.core.config import RunConfig
from studio.core.data.special_tokens import BOS_ID, PAD_ID, UNK_ID
from studio.core.data.tokenizers import Tokenizer
from studio.core.decoding.greedy import batched_greedy
from studio.core.errors import DataError
from studio.core.events import DataReady, LogMessage, MetricsReported
from studio.core.i18n import _
from studio.core.models.base import IGNORE_INDEX, LanguageModel
from studio.core.tasks.demo import demo_task_paths
from studio.core.tasks.examples import Example, load_examples
from studio.core.tasks.heads import ClassifierModel, SpanQAModel, best_span
from studio.core.tasks.metrics import task_metrics
from studio.core.tasks.model import wrap_for_task
from studio.core.tasks.token_ids import (
    answer_token_span,
    inputs_of,
    locate_answer,
    prompt_ids,
    qa_windows,
    target_ids,
)
from studio.core.training.workload import Batch, Emit, Evaluation, Workload


@dataclass
class Feature:
    ids: list[int]
    labels: list[int]  # per token (generation), [label] (classify), [start, end] (span QA)
    target: list[int] | None = None  # encoder-decoder targets


def resolve_examples(config: RunConfig) -> tuple[list[Example], list[Example], list[Example]]:
    task = config.task
    if task.dataset:
        paths = demo_task_paths(task.dataset)
        train_paths, valid_paths, test_paths = [paths["train"]], [paths["valid"]], [paths["test"]]
    else:
        train_paths, valid_paths, test_paths = [Path(p) for p in task.paths], [Path(p) for p in task.valid_paths], [Path(p) for p in task.test_paths]
    train = load_examples(task.kind, train_paths, task.format, task.fields)
    valid = load_examples(task.kind, valid_paths, task.format, task.fields) if valid_paths else []
    test = load_examples(task.kind, test_paths, task.format, task.fields) if test_paths else []
    if task.cv_folds > 1:
        # k-fold cross-validation: a seeded shuffle, then every k-th example validates. Classification
        # is stratified: the shuffled examples are grouped by label before they are dealt out, so
        # every fold holds each label in the share the whole set does (a rare label is in every fold).
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.data.split_seed)).tolist()
        dealt = sorted(order, key=lambda i: train[i].target) if task.kind == "classify" else order  # stable sort
        fold_of = {i: k % task.cv_folds for k, i in enumerate(dealt)}
        # Both sides keep the shuffled order, so a validation set cut to eval_batches is still mixed.
        valid = [train[i] for i in order if fold_of[i] == task.cv_fold]
        train = [train[i] for i in order if fold_of[i] != task.cv_fold]
    elif not valid and task.valid_fraction > 0:
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.data.split_seed)).tolist()
        n = max(1, round(len(train) * task.valid_fraction))
        valid = [train[i] for i in order[:n]]
        train = [train[i] for i in order[n:]]
    return train, valid, test


class TaskWorkload(Workload):
    def __init__(self, config: RunConfig, emit: Emit, base: LanguageModel, tokenizer: Tokenizer,
                 labels: list[str] | None = None, rank: int = 0):
        self.config = config
        self.emit = emit
        self.base = base
        self.tokenizer = tokenizer
        self.kind = config.task.kind
        self.head = "classifier" if self.kind == "classify" else ("span" if self.kind == "qa" and config.task.qa_mode == "extractive" else "")
        self.seq2seq = base.config.objective == "seq2seq"
        if not self.head and base.config.objective == "masked":
            # Translators: {kind} is a task kind (translate, qa, summarize), kept as is.
            message = _("a BERT-style encoder cannot write text, so it cannot be fine-tuned to {kind}; start from a GPT, RNN or seq2seq run")
            raise DataError(message.format(kind=self.kind))
        started = time.perf_counter()
        self.train_examples, self.valid_examples, self.test_examples = resolve_examples(config)
        self.labels = labels or sorted({e.target for e in self.train_examples})
        self.label_index = {name: i for i, name in enumerate(self.labels)}
        # 0 means "as long as the longest training target", so short answers leave the prompt
        # as much of the context as possible without anyone having to count tokens.
        self.max_target_tokens = config.task.max_target_tokens or max(
            (len(tokenizer.encode(e.target)) for e in self.train_examples if not self.head), default=1
        )
        self.train_features = self._features(self.train_examples, training=True)
        if not self.train_features:
            message = _("none of the {count} training examples fits the model's context of {context} tokens")
            raise DataError(message.format(count=len(self.train_examples), context=base.config.context_length))
        self.valid_features = self._features(self.valid_examples[: config.train.eval_batches * config.train.batch_size], training=True)
        self.generator = torch.Generator().manual_seed(config.train.seed + 1000 * rank)
        tokens = sum(len(f.ids) + len(f.target or []) for f in self.train_features)
        emit(DataReady(
            cache_hit=False, seconds=time.perf_counter() - started, vocab_size=tokenizer.vocab_size, tokenizer=tokenizer.describe(),
            train_tokens=tokens, valid_tokens=sum(len(f.ids) for f in self.valid_features), test_tokens=0, encodings=("UTF-8",),
        ))
        self._warn_unknown_targets()
        # Translators: {kind} is a task kind (classify, translate, ...), kept as is.
        summary = _("{kind}: {train:,} training, {valid:,} validation, {test:,} test examples").format(
            kind=self.kind, train=len(self.train_examples), valid=len(self.valid_examples), test=len(self.test_examples)
        )
        if self.head == "classifier":
            # Translators: put after the count of examples; {labels} are the classes' names from the data.
            summary += _("; labels {labels}").format(labels=", ".join(self.labels))
        emit(LogMessage("info", summary))

    def _warn_unknown_targets(self) -> None:
        """A base model cannot write what its vocabulary lacks; say so before hours are spent."""
        if self.head:
            return
        targets = [t for f in self.train_features for t in (f.target if f.target is not None else f.labels) if t >= 0]
        unknown = sum(1 for t in targets if t == UNK_ID)
        if unknown:
            missing = sorted({ch for e in self.train_examples[:500] for ch in e.target if UNK_ID in self.tokenizer.encode(ch)})[:20]
            if missing:
                # Translators: {examples} are characters or words from the data, separated by spaces.
                message = _("{share:.1%} of the target tokens are unknown to the model's vocabulary (for example {examples}); "
                            "it cannot learn to write them. A base trained on text with these characters or words avoids this.")
            else:
                message = _("{share:.1%} of the target tokens are unknown to the model's vocabulary; "
                            "it cannot learn to write them. A base trained on text with these characters or words avoids this.")
            self.emit(LogMessage("warning", message.format(share=unknown / len(targets), examples=" ".join(missing))))

    # ---- features ------------------------------------------------------------------------

    def _label_id(self, example: Example) -> int:
        try:
            return self.label_index[example.target]
        except KeyError:
            message = _("label {label} does not occur in the training examples").format(label=repr(example.target))
            raise DataError(message, example.path, example.line or None) from None

    def _features(self, examples: list[Example], training: bool) -> list[Feature]:
        ctx = self.base.config.context_length
        tok = self.tokenizer
        template = self.config.task.template
        out: list[Feature] = []
        for ex in examples:
            if self.head == "classifier":
                out.append(Feature(tok.encode(ex.source)[:ctx], [self._label_id(ex)]))
            elif self.head == "span":
                start = locate_answer(ex.source, ex.target, ex.answer_start)
                if start < 0:
                    if training:
                        continue
                    start = 0
                for window in qa_windows(tok, ex.source, ex.question, ctx):
                    span = answer_token_span(window, start, start + len(ex.target))
                    if span is not None:
                        out.append(Feature(window.ids, list(span)))
                        break
            else:
                limit = ctx - 1 if self.seq2seq else causal_target_budget(ctx, self.max_target_tokens)
                target = target_ids(tok, ex.target, min(limit, self.max_target_tokens + 1))
                inputs = inputs_of(self.kind, ex.source, ex.question)
                if self.seq2seq:
                    out.append(Feature(prompt_ids(tok, self.kind, template, inputs, ctx), [], target))
                else:
                    # The prompt is cut exactly as it will be at inference (where the target's
                    # length is unknown), never to fit this example's own target: a model trained
                    # on longer prompts answers from text it will not be shown.
                    prompt = prompt_ids(tok, self.kind, template, inputs, ctx - limit)
                    out.append(Feature(prompt + target, [IGNORE_INDEX] * len(prompt) + target))
        return out

    # ---- the interface ---------------------------------------------------------------------

    def build_model(self) -> nn.Module:
        return wrap_for_task(self.base, self.config, self.labels)

    def total_steps(self, config: RunConfig, world: int) -> int:
        if config.train.epochs > 0:
            per_step = config.train.batch_size * config.train.grad_accum_steps * world
            return max(1, math.ceil(config.train.epochs * len(self.train_features) / per_step))
        return config.train.steps

    def next_batch(self) -> Batch:
        pick = torch.randint(len(self.train_features), (self.config.train.batch_size,), generator=self.generator).tolist()
        return self._collate([self.train_features[i] for i in pick])

    def batch_tokens(self, batch: Batch) -> int:
        return int(batch["mask"].sum()) + (int((batch["target"] != IGNORE_INDEX).sum()) if "target" in batch else 0)

    def _collate(self, features: list[Feature]) -> Batch:
        width = max(len(f.ids) for f in features)
        idx = torch.full((len(features), width), PAD_ID, dtype=torch.long)
        for row, f in enumerate(features):
            idx[row, : len(f.ids)] = torch.tensor(f.ids)
        batch: Batch = {"idx": idx, "mask": idx != PAD_ID}
        if self.head:
            batch["labels"] = torch.tensor([f.labels for f in features], dtype=torch.long)
        elif self.seq2seq:
            t_width = max(len(f.target or []) for f in features)
            target = torch.full((len(features), t_width), IGNORE_INDEX, dtype=torch.long)
            tgt_in = torch.full((len(features), t_width), PAD_ID, dtype=torch.long)
            for row, f in enumerate(features):
                t = f.target or []
                target[row, : len(t)] = torch.tensor(t)
                tgt_in[row, : len(t)] = torch.tensor([BOS_ID, *t[:-1]])
            batch["target"], batch["tgt_in"] = target, tgt_in
        else:
            labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
            for row, f in enumerate(features):
                labels[row, : len(f.labels)] = torch.tensor(f.labels)
            batch["labels"] = labels
        return batch

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        if self.head == "classifier":
            return F.cross_entropy(model(batch["idx"], batch["mask"]).float(), batch["labels"][:, 0])
        if self.head == "span":
            start, end = model(batch["idx"], batch["mask"])
            return (F.cross_entropy(start, batch["labels"][:, 0]) + F.cross_entropy(end, batch["labels"][:, 1])) / 2
        if self.seq2seq:
            logits = model(batch["idx"], batch["tgt_in"], batch["mask"])
            return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), batch["target"].reshape(-1), ignore_index=IGNORE_INDEX)
        assert isinstance(model, LanguageModel)
        logits = model.logits(batch["idx"])
        # Predict token t+1 from tokens up to t; the labels are the tokens themselves, shifted.
        return F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)).float(), batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE_INDEX
        )

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device, autocast: Any, sample: bool, step: int) -> Evaluation | None:
        if not self.valid_examples:
            return None
        was_training = model.training
        model.eval()
        try:
            total, count = 0.0, 0
            bs = self.config.train.batch_size
            for i in range(0, len(self.valid_features), bs):
                batch = {k: v.to(device) for k, v in self._collate(self.valid_features[i : i + bs]).items()}
                with autocast:
                    total += float(self.loss(model, batch)) * len(batch["idx"])
                count += len(batch["idx"])
            examples = self.valid_examples[: self.config.task.eval_examples]
            predictions = self.predict(model, examples)
            metrics = task_metrics(self.kind, predictions, [e.all_targets for e in examples])
        finally:
            model.train(was_training)
        # Translators: a sample of the model's answers: the input, then "→ answer   (expected: right answer)".
        line = _("{input}\n  → {answer}   (expected: {expected})")
        shown = "\n".join(line.format(input=_short(e.question or e.source), answer=p, expected=e.target)
                           for e, p in list(zip(examples, predictions, strict=True))[:3])
        return Evaluation(total / max(1, count), metrics, shown if sample else "")

    def predict(self, model: nn.Module, examples: list[Example]) -> list[str]:
        """What the model answers for each example (labels, spans or generated text)."""
        device = next(model.parameters()).device
        tok = self.tokenizer
        if self.head == "classifier":
            assert isinstance(model, ClassifierModel)
            feats = [Feature(tok.encode(e.source)[: self.base.config.context_length], [0]) for e in examples]
            out: list[str] = []
            for i in range(0, len(feats), 64):
                batch = self._collate(feats[i : i + 64])
                logits = model(batch["idx"].to(device), batch["mask"].to(device))
                out.extend(self.labels[j] for j in logits.argmax(-1).tolist())
            return out
        if self.head == "span":
            assert isinstance(model, SpanQAModel)
            return [extract_answer(model, tok, e.source, e.question) for e in examples]
        ctx = self.base.config.context_length
        limit = self.max_target_tokens
        budget = ctx if self.seq2seq else ctx - causal_target_budget(ctx, limit)
        prompts = [prompt_ids(tok, self.kind, self.config.task.template, inputs_of(self.kind, e.source, e.question), budget)
                   for e in examples]
        generated = batched_greedy(self.base, prompts, limit)
        return [tok.decode(g).strip() for g in generated]

    def final_results(self, model: nn.Module, device: torch.device, emit: Emit) -> dict[str, dict[str, float]]:
        results = {}
        for split, examples in (("valid", self.valid_examples), ("test", self.test_examples)):
            if not examples:
                continue
            started = time.perf_counter()
            predictions = self.predict(model, examples)
            metrics = task_metrics(self.kind, predictions, [e.all_targets for e in examples])
            results[split] = metrics
            emit(MetricsReported(split, tuple(sorted(metrics.items())), len(examples), time.perf_counter() - started))
        return results

    def rng_states(self) -> dict[str, torch.Tensor]:
        return {"sampler": self.generator.get_state()}

    def load_rng_states(self, states: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(states["sampler"])

    def checkpoint_extra(self) -> dict[str, Any]:
        return {"labels": self.labels, "max_target_tokens": self.max_target_tokens}


def causal_target_budget(ctx: int, max_target_tokens: int) -> int:
    """Tokens a decoder-only model keeps for the target (and its <eos>): at most half the context,
    so the prompt always keeps the other half, in training and at inference alike."""
    return max(1, min(max_target_tokens + 1, ctx // 2))


def _short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


@torch.no_grad()
def extract_answer(model: SpanQAModel, tokenizer: Tokenizer, context: str, question: str) -> str:
    """The best-scoring span over all windows of the context."""
    device = next(model.parameters()).device
    best, best_score = "", float("-inf")
    for window in qa_windows(tokenizer, context, question, model.base.config.context_length):
        idx = torch.tensor([window.ids], device=device)
        mask = torch.ones_like(idx, dtype=torch.bool)
        start, end = model(idx, mask)
        allowed = torch.zeros(len(window.ids), dtype=torch.bool, device=device)
        allowed[window.context_start :] = True
        s, e = best_span(start[0], end[0], allowed)
        score = float(start[0, s] + end[0, e])
        if score > best_score and window.offsets:
            a = window.offsets[s - window.context_start][0]
            b = window.offsets[e - window.context_start][1]
            best, best_score = context[a:b], score
    return best.strip()

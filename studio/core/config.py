"""Typed run configuration: one dataclass per component, composed into ``RunConfig``.

The same dataclasses drive three front ends, so each field carries its own metadata (label, help,
range, unit, choices) through :func:`setting`:

- TOML files (``RunConfig.load`` / ``RunConfig.save``), written with the help text as comments;
- CLI overrides such as ``--set train.lr=3e-4``;
- the GUI, which generates its forms from :meth:`Section.field_specs`.

Nothing here imports torch, so reading a config (and drawing a form) is instant. Model configs are
polymorphic (``[model] arch = "gpt"``); their classes are in ``studio.core.architectures``, looked
up by name when a config is parsed. What a setting is (``setting``, ``Section``) is in
``studio.core.settings``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import tomli_w

from studio.core.architectures import ARCH_NAMES, config_class
from studio.core.durations import parse_duration
from studio.core.errors import ConfigError, ConfigIssue
from studio.core.fileio import atomic_write_text
from studio.core.i18n import N_, _
from studio.core.settings import ModelConfig, Section, setting, text_codec_problem

CONFIG_FORMAT_VERSION = 2
# Format 2 made the GPT's defaults the quality ladder's winners (RoPE, RMSNorm, QK-norm, ReLU²).
# A format-1 config (every run saved before) that leaves one out meant the default of then.
_FORMAT_1_GPT_DEFAULTS = {"positions": "learned", "norm": "layer", "qk_norm": False, "activation": "gelu"}


# --------------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------------

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass
class RunSection(Section):
    section: ClassVar[str] = "run"

    name: str = setting("", label=N_("Run name"), help=N_("Shown in the run list. Empty: the architecture and the start time."))
    device: str = setting(
        "auto", label=N_("Device"), help=N_("auto (a GPU when there is one), cpu, cuda, cuda:1 or mps.")
    )
    precision: Literal["auto", "fp32", "bf16"] = setting(
        "auto",
        label=N_("Precision"),
        help=N_("auto uses bf16 only where the device computes it natively; on most CPUs bf16 is ~100x slower."),
        choice_labels={"auto": N_("auto (bf16 where it is native)")},
    )
    threads: int = setting(
        0,
        label=N_("CPU threads"),
        help=N_("Threads for PyTorch's CPU math. 0 picks the cores other programs leave free when training starts (from the load average): more threads than free cores run slower, not faster."),
        min=0,
        max=512,
        advanced=True,
    )
    tags: list[str] = setting([], label=N_("Tags"), help=N_("Labels for finding the run in the library."), advanced=True)
    compile: bool = setting(
        False, label=N_("torch.compile"), help=N_("Compile the model first. Costs a minute up front; measure before relying on it. If compiling fails, training goes on without it."), advanced=True
    )

    def check(self) -> list[ConfigIssue]:
        if not _DEVICE_RE.match(self.device):
            # Translators: run.device is a setting's name; auto, cpu, cuda, cuda:N and mps are its values, kept as is.
            message = _("run.device={device} is not one of auto, cpu, cuda, cuda:N, mps").format(device=repr(self.device))
            return [ConfigIssue("run.device", message)]
        return []


_CORPUS_FILES = ("*.txt", "*.md", "*.csv", "*.tsv", "*.jsonl", "*.json")
_EXAMPLE_FILES = ("*.jsonl", "*.json", "*.tsv", "*.txt", "*.csv")
_EXAMPLE_TASKS = ("classify", "translate", "qa", "summarize")  # the task kinds that learn from examples
_WRITING_TASKS = ("translate", "qa", "summarize")  # ... and those that write their answer


@dataclass
class DataConfig(Section):
    section: ClassVar[str] = "data"

    dataset: str = setting(
        "demo",
        label=N_("Built-in dataset"),
        help=N_("Used when no files are given: demo or demo-zh (written by Studio), tinyshakespeare, wikitext-2, imdb."),
        choices_from="built-in datasets",
        free_text=False,
    )
    paths: list[str] = setting(
        [], label=N_("Corpus files"), help=N_("Text, CSV/TSV or JSONL files, or folders of them."), path="file_or_folder", file_patterns=_CORPUS_FILES
    )
    format: Literal["auto", "text", "csv", "tsv", "jsonl"] = setting(
        "auto", label=N_("Format"), help=N_("auto reads the file extension: .csv, .tsv, .jsonl/.json, anything else is plain text."),
        choice_labels={"auto": N_("auto (from the file extension)"), "text": N_("plain text")},
    )
    column: str = setting(
        "text", label=N_("CSV column"), help=N_("The column that holds the text, by header name."),
        shown_when={"format": ("csv", "tsv")}, choices_from="the file's columns",
    )
    json_field: str = setting(
        "text", label=N_("JSONL field"), help=N_("The field of each JSON line that holds the text."),
        shown_when={"format": ("jsonl",)}, choices_from="the file's fields",
    )
    encoding: str = setting(
        "auto",
        label=N_("Encoding"),
        help=N_("auto: a byte-order mark, UTF-16, strict UTF-8 (damaged UTF-8 is an error naming the line), else charset-normalizer's choice among the legacy code pages (GB18030, Big5, Shift_JIS, Windows-1252, ...). Or name a Python text codec."),
        suggestions=("auto", "utf-8", "utf-16", "cp1252", "gb18030", "big5", "shift_jis", "euc-jp", "euc-kr", "cp1251", "koi8-r"),
        choice_labels={"auto": N_("auto (detect it)")},
    )
    valid_paths: list[str] = setting(
        [], label=N_("Validation files"), help=N_("Given files for the validation split. Empty: take a fraction."),
        path="file_or_folder", file_patterns=_CORPUS_FILES,
    )
    test_paths: list[str] = setting(
        [], label=N_("Test files"), help=N_("Given files for the test split. Empty: take a fraction."), path="file_or_folder", file_patterns=_CORPUS_FILES
    )
    valid_fraction: float = setting(0.1, label=N_("Validation share"), help=N_("Share held out for validation."), min=0.0, max=0.5)
    test_fraction: float = setting(0.0, label=N_("Test share"), help=N_("Share held out for testing."), min=0.0, max=0.5)
    split_mode: Literal["auto", "tail", "shuffle"] = setting(
        "auto",
        label=N_("Split by"),
        help=N_("tail: the last share of each text (no leakage between neighbouring lines); shuffle: whole rows or files, seeded. auto: shuffle when there are 20+ rows or files."),
        choice_labels={"auto": N_("auto (shuffle from 20 rows or files)"), "tail": N_("tail (the end of each text)"),
                       "shuffle": N_("shuffle (whole rows or files)")},
    )
    split_seed: int = setting(1234, label=N_("Split seed"), help=N_("Seed for the shuffled split."), min=0, advanced=True)
    skip_bad_rows: bool = setting(
        False, label=N_("Skip bad rows"), help=N_("Skip malformed CSV/JSONL rows (and count them) instead of stopping."), advanced=True
    )

    def check(self) -> list[ConfigIssue]:
        issues = []
        if self.valid_fraction + self.test_fraction >= 0.9:
            issues.append(ConfigIssue("data.valid_fraction", _("validation and test shares leave too little for training")))
        if not self.dataset and not self.paths:
            # Translators: data.paths and data.dataset are setting names, kept as is.
            issues.append(ConfigIssue("data.paths", _("no corpus: give data.paths or a built-in data.dataset")))
        if self.encoding != "auto":
            problem = text_codec_problem(self.encoding)  # rot13, zlib, base64: codecs, but not for text files
            if problem:
                issues.append(ConfigIssue("data.encoding", problem))
        return issues


@dataclass
class TokenizerConfig(Section):
    section: ClassVar[str] = "tokenizer"

    kind: Literal["char", "word", "bpe"] = setting(
        "char",
        label=N_("Tokenizer"),
        help=N_("char: one token per character. word: spaCy's rule-based tokenizer for a language. bpe: subwords learned from the corpus."),
        choice_labels={"char": N_("Character"), "word": N_("Word (spaCy)"), "bpe": N_("Subword (BPE)")},
    )
    vocab_size: int = setting(
        8000,
        label=N_("Vocabulary size"),
        help=N_("Upper limit, special tokens included. BPE learns merges up to it; char and word keep the most frequent entries."),
        min=16,
        max=1_000_000,
        step=1000,
    )
    min_frequency: int = setting(1, label=N_("Minimum frequency"), help=N_("Entries seen fewer times become <unk> (char, word) or are not merged (BPE)."), min=1)
    language: str = setting(
        "en", label=N_("Language"), help=N_("spaCy language code for word tokenization: en, fr, de, zh, ja, es, ..."),
        shown_when={"kind": ("word",)}, suggestions=("en", "zh", "fr", "de", "es", "it", "pt", "nl", "ja", "ru", "xx"),
        # Translators: languages spaCy tokenizes; "xx" is its model for any language.
        choice_labels={"en": N_("English"), "zh": N_("Chinese"), "fr": N_("French"), "de": N_("German"), "es": N_("Spanish"),
                       "it": N_("Italian"), "pt": N_("Portuguese"), "nl": N_("Dutch"), "ja": N_("Japanese"), "ru": N_("Russian"),
                       "xx": N_("Any language (xx)")},
    )
    lowercase: bool = setting(False, label=N_("Lowercase"), help=N_("Lowercase text before tokenizing."))

    def check(self) -> list[ConfigIssue]:
        if self.kind == "word" and not re.fullmatch(r"[a-z]{2,3}|xx", self.language):
            message = _("{language} is not a language code such as en, fr, zh").format(language=repr(self.language))
            return [ConfigIssue("tokenizer.language", message)]
        if self.kind == "bpe" and self.vocab_size < 300:
            return [ConfigIssue("tokenizer.vocab_size", _("BPE needs at least 300 entries (256 bytes plus merges and specials)"))]
        return []


@dataclass
class OptimizerConfig(Section):
    section: ClassVar[str] = "optimizer"

    name: Literal["adamw", "adam", "sgd", "muon"] = setting("adamw", label=N_("Optimizer"), help=N_("AdamW decouples weight decay from the gradient; SGD uses momentum; Muon orthogonalises the steps of the hidden weight matrices (AdamW for the rest)."))
    beta1: float = setting(0.9, label=N_("β1"), help=N_("Adam's first-moment decay."), min=0.0, max=0.9999, advanced=True)
    beta2: float = setting(0.99, label=N_("β2"), help=N_("Adam's second-moment decay. 0.99 suits small, noisy batches."), min=0.0, max=0.99999, advanced=True)
    eps: float = setting(1e-8, label=N_("ε"), help=N_("Adam's denominator guard."), min=0.0, max=1.0, advanced=True)
    weight_decay: float = setting(0.1, label=N_("Weight decay"), help=N_("Applied to weight matrices and embeddings, not to biases or norms."), min=0.0, max=10.0)
    momentum: float = setting(0.9, label=N_("Momentum"), help=N_("SGD, and Muon's hidden matrices."), min=0.0, max=0.9999)


@dataclass
class ScheduleConfig(Section):
    section: ClassVar[str] = "schedule"

    warmup_steps: int = setting(100, label=N_("Warm-up"), help=N_("Steps of linear warm-up from zero to the learning rate."), unit=N_("steps"), min=0)
    decay: Literal["cosine", "linear", "constant", "wsd"] = setting(
        "cosine", label=N_("Decay"),
        help=N_("How the rate falls after warm-up, until the last step. wsd (warm-up, stable, decay): the rate holds at "
                "its peak, then falls linearly to the final rate over the last share of training."),
        choice_labels={"cosine": N_("cosine"), "linear": N_("linear"), "constant": N_("constant"),
                       "wsd": N_("warm-up, stable, decay (WSD)")},
    )
    min_lr_ratio: float = setting(0.1, label=N_("Final rate"), help=N_("The rate at the last step, as a share of the peak."), min=0.0, max=1.0)
    decay_fraction: float = setting(
        0.2, label=N_("Decay share"),
        help=N_("For wsd: the last share of training (after warm-up, or of the time budget) in which the rate falls "
                "linearly to the final rate; until then it holds at its peak. 0 never lowers it."),
        min=0.0, max=1.0, shown_when={"decay": ("wsd",)},
    )


@dataclass
class TrainConfig(Section):
    section: ClassVar[str] = "train"

    # 3e-3 is tuned on the small char-level recipes (GPT and LSTM, ~0.8M parameters, batch 12):
    # 1e-3 leaves the GPT near 1.89 nats/char after 2000 steps, 3e-3 reaches about 1.76.
    lr: float = setting(3e-3, label=N_("Learning rate"), help=N_("Peak rate after warm-up. Larger models want smaller rates."), min=0.0, max=10.0)
    batch_size: int = setting(12, label=N_("Batch size"), help=N_("Sequences per step (per device)."), min=1, max=65536)
    steps: int = setting(2000, label=N_("Steps"), help=N_("Optimizer steps to train for."), min=1, max=1_000_000_000)
    epochs: float = setting(
        0.0, label=N_("Epochs"), help=N_("If above 0, sets the steps so that training sees the training split this many times."), min=0.0
    )
    grad_accum_steps: int = setting(1, label=N_("Accumulation"), help=N_("Micro-batches per optimizer step; the effective batch is batch size x this."), min=1, max=1024)
    grad_clip: float = setting(1.0, label=N_("Gradient clip"), help=N_("Clip the global gradient norm to this; 0 turns clipping off."), min=0.0)
    eval_interval: int = setting(250, label=N_("Evaluate every"), help=N_("Validation loss and a text sample every this many steps."), unit=N_("steps"), min=1)
    eval_batches: int = setting(20, label=N_("Evaluation batches"), help=N_("Batches averaged for each validation loss."), min=1, max=100_000)
    early_stopping_patience: int = setting(
        0, label=N_("Early-stopping patience"), help=N_("Stop after this many evaluations without a better validation loss; 0 never stops early."), min=0
    )
    early_stopping_min_delta: float = setting(0.0, label=N_("Minimum improvement"), help=N_("A smaller drop in validation loss does not count as better."), min=0.0, advanced=True)
    checkpoint_interval: int = setting(0, label=N_("Save every"), help=N_("Save the last checkpoint every this many steps; 0 saves at each evaluation."), unit=N_("steps"), min=0)
    snapshots: int = setting(
        8, label=N_("Inspect snapshots"), min=0, max=100, advanced=True,
        help=N_("Weights-only copies of the model, taken at evaluations and spread over the run, that the Inspect page's "
                "time scrubber moves through; 0 keeps none."),
    )
    log_interval: int = setting(
        0, label=N_("Log every"), unit=N_("steps"), min=0, advanced=True,
        help=N_("Record the training loss (the mean over these steps) every this many steps. Reading the loss back makes "
                "the computer wait for the GPU; 0: every step on the CPU, where that costs nothing, and every 10 on a GPU."),
    )
    layer_stats_interval: int = setting(
        10, label=N_("Layer statistics every"), unit=N_("steps"), min=0, advanced=True,
        help=N_("Record each layer's gradient norm and update-to-weight ratio every this many steps, for the Inspect "
                "page; 0 turns it off."),
    )
    seed: int = setting(1337, label=N_("Seed"), help=N_("Seeds weights, batches and dropout: the same seed gives the same run."), min=0)
    sample_tokens: int = setting(200, label=N_("Sample length"), help=N_("Tokens of text sampled at each evaluation; 0 turns sampling off."), min=0, max=10000)
    sample_prompt: str = setting("", label=N_("Sample prompt"), help=N_("Text the samples start from. Empty: start from <bos>."))
    time_budget: str = setting(
        "",
        label=N_("Time budget"),
        help=N_("Stop after this much training time (evaluations included, pauses not), e.g. 90s, 3m, 1h30m; the learning "
                "rate then warms up and decays over the budget. Steps still stop training first if they run out: raise "
                "them to let the budget decide. Empty: no budget."),
        suggestions=("", "90s", "3m", "10m", "1h"),
    )

    def check(self) -> list[ConfigIssue]:
        try:
            parse_duration(self.time_budget)
        except ValueError:
            # Translators: train.time_budget is a setting's name; 90s, 3m and 1h30m are values, kept as is.
            message = _("train.time_budget={value} is not a duration such as 90s, 3m or 1h30m").format(value=repr(self.time_budget))
            return [ConfigIssue("train.time_budget", message)]
        return []


# The metric a task run is ranked and summarised by (the run library, search, the model card).
PRIMARY_METRIC = {"classify": "accuracy", "translate": "bleu", "summarize": "rougeL", "qa": "f1"}


@dataclass
class TaskConfig(Section):
    """What the run learns: language modelling on [data], or a task on labelled examples."""

    section: ClassVar[str] = "task"

    kind: Literal["lm", "classify", "translate", "qa", "summarize"] = setting(
        "lm",
        label=N_("Task"),
        help=N_("lm: predict text (the corpus in [data]). classify, translate, qa, summarize: learn from the examples below."),
        choice_labels={"lm": N_("Continued language modelling (new corpus)"), "classify": N_("Text classification"),
                       "translate": N_("Translation"), "qa": N_("Question answering"), "summarize": N_("Summarization")},
    )
    dataset: str = setting(
        "",
        label=N_("Demo task data"),
        help=N_("Synthetic data Studio writes itself: demo-translate, demo-qa, demo-summarize, demo-sentiment. Empty: the files below."),
        shown_when={"kind": _EXAMPLE_TASKS}, choices_from="demo tasks", free_text=False,
    )
    paths: list[str] = setting(
        [], label=N_("Training examples"), help=N_("JSONL, SQuAD JSON, TSV sentence pairs or CSV."),
        shown_when={"kind": _EXAMPLE_TASKS}, path="file", file_patterns=_EXAMPLE_FILES,
    )
    valid_paths: list[str] = setting(
        [], label=N_("Validation examples"), help=N_("Empty: hold out a share of the training examples."),
        shown_when={"kind": _EXAMPLE_TASKS}, path="file", file_patterns=_EXAMPLE_FILES,
    )
    test_paths: list[str] = setting(
        [], label=N_("Test examples"), help=N_("Scored once at the end of the run."),
        shown_when={"kind": _EXAMPLE_TASKS}, path="file", file_patterns=_EXAMPLE_FILES,
    )
    format: Literal["auto", "jsonl", "squad", "tsv", "csv"] = setting(
        "auto", label=N_("Format"), help=N_("auto reads the extension: .jsonl, .json (SQuAD), .tsv/.txt (pairs), .csv."),
        shown_when={"kind": _EXAMPLE_TASKS}, choice_labels={"auto": N_("auto (from the file extension)"), "squad": N_("SQuAD")},
    )
    fields: list[str] = setting(
        [],
        label=N_("Field mapping"),
        help=N_("role=column overrides, e.g. text=review; label=stars. Roles: text, label, source, target, context, question, answer, document, summary."),
        shown_when={"kind": _EXAMPLE_TASKS},
    )
    qa_mode: Literal["extractive", "generative"] = setting(
        "extractive", label=N_("QA mode"), help=N_("extractive: point at the answer in the context. generative: write the answer."),
        shown_when={"kind": ("qa",)}, choice_labels={"extractive": N_("extractive"), "generative": N_("generative")},
    )
    template: str = setting(
        "",
        label=N_("Prompt template"),
        help=N_("For decoder-only models: how an example becomes text; the loss covers only the part after the last field's marker. Empty: a default per task, e.g. translate: {source} => {target}"),
        shown_when={"kind": _WRITING_TASKS},
    )
    valid_fraction: float = setting(
        0.1, label=N_("Validation share"), help=N_("Share of training examples held out when no validation files are given."), min=0.0, max=0.5,
        shown_when={"kind": _EXAMPLE_TASKS},
    )
    eval_examples: int = setting(
        200, label=N_("Examples scored"), help=N_("Validation examples decoded for the task metric at each evaluation."), min=1, max=100_000,
        shown_when={"kind": _EXAMPLE_TASKS},
    )
    max_target_tokens: int = setting(
        0,
        label=N_("Longest output"),
        help=N_("Longest target learned and generated; 0: the longest training target. A decoder-only model gives it at most half its context, the prompt the rest."),
        unit=N_("tokens"), min=0, max=4096,
        shown_when={"kind": _WRITING_TASKS},
    )
    cv_folds: int = setting(
        0, label=N_("Cross-validation folds"), help=N_("Above 1: split the training examples into this many folds; the fold below validates."), min=0, max=100,
        advanced=True, shown_when={"kind": _EXAMPLE_TASKS},
    )
    cv_fold: int = setting(
        0, label=N_("Validation fold"), help=N_("Which fold validates when cross-validating (0-based)."), min=0, advanced=True, shown_when={"kind": _EXAMPLE_TASKS}
    )

    def check(self) -> list[ConfigIssue]:
        issues = []
        if self.kind != "lm" and not self.dataset and not self.paths:
            # Translators: {kind} is a task kind (classify, translate, ...); task.paths and task.dataset are setting names.
            message = _("a {kind} task needs examples: task.paths or a demo task.dataset").format(kind=self.kind)
            issues.append(ConfigIssue("task.paths", message))
        for item in self.fields:
            if "=" not in item:
                # Translators: role=column is written as is.
                issues.append(ConfigIssue("task.fields", _("{item} should look like role=column").format(item=repr(item))))
        if self.cv_folds > 1 and self.cv_fold >= self.cv_folds:
            # Translators: task.cv_fold is a setting's name, kept as is.
            message = _("task.cv_fold={fold} but there are only {folds} folds (0 to {last})").format(
                fold=self.cv_fold, folds=self.cv_folds, last=self.cv_folds - 1
            )
            issues.append(ConfigIssue("task.cv_fold", message))
        return issues


@dataclass
class FinetuneConfig(Section):
    """Start from a trained model, and choose which of its weights learn."""

    section: ClassVar[str] = "finetune"

    base: str = setting(
        "", label=N_("Base model"), help=N_("A run folder or checkpoint folder to start from. Empty: a new model from [model]."),
        path="folder", choices_from="trained runs",
    )
    base_checkpoint: Literal["best", "last"] = setting(
        "best", label=N_("Base checkpoint"), help=N_("Which of the base run's checkpoints."),
        choice_labels={"best": N_("best (lowest validation loss)"), "last": N_("last")},
    )
    method: Literal["full", "freeze", "lora"] = setting(
        "full",
        label=N_("Method"),
        help=N_("full: every weight learns. freeze: the first N layers stay fixed. lora: low-rank adapters learn, the base stays fixed."),
        choice_labels={"full": N_("Full fine-tuning"), "freeze": N_("Freeze the first layers"), "lora": N_("LoRA adapters")},
    )
    freeze_layers: int = setting(
        0, label=N_("Frozen layers"), help=N_("With method=freeze: the embeddings and this many first layers stay fixed."), min=0,
        shown_when={"method": ("freeze",)},
    )
    lora_rank: int = setting(8, label=N_("LoRA rank"), help=N_("Size of each adapter's bottleneck."), min=1, max=1024, shown_when={"method": ("lora",)})
    lora_alpha: float = setting(16.0, label=N_("LoRA alpha"), help=N_("Adapter output scale: alpha / rank."), min=0.0, shown_when={"method": ("lora",)})
    lora_dropout: float = setting(
        0.0, label=N_("LoRA dropout"), help=N_("Dropout on the adapters' input."), min=0.0, max=0.9, shown_when={"method": ("lora",)}
    )
    lora_targets: list[str] = setting(
        ["qkv", "q", "kv", "proj", "fc", "out"],
        label=N_("LoRA targets"),
        help=N_("Linear layers to adapt, by the last part of their name: qkv, q, kv, proj (attention), fc, out (MLP)."),
        shown_when={"method": ("lora",)},
    )


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------

SECTIONS: dict[str, type[Section]] = {
    "run": RunSection,
    "data": DataConfig,
    "tokenizer": TokenizerConfig,
    "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig,
    "train": TrainConfig,
    "task": TaskConfig,
    "finetune": FinetuneConfig,
}
SECTION_ORDER = ("run", "data", "tokenizer", "model", "optimizer", "schedule", "train", "task", "finetune")


def _default_model() -> ModelConfig:
    return config_class("gpt")()


@dataclass
class RunConfig:
    run: RunSection = field(default_factory=RunSection)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=_default_model)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    # ---- (de)serialisation ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format_version": CONFIG_FORMAT_VERSION}
        for name in SECTION_ORDER:
            out[name] = getattr(self, name).to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> RunConfig:
        """Parse and validate. Every problem is reported at once, each naming its key."""
        data = migrate(dict(data), source)
        issues: list[ConfigIssue] = []
        for key in data:
            if key != "format_version" and key not in SECTION_ORDER:
                # Translators: {known} lists the config file's section names, kept as is.
                issues.append(ConfigIssue(key, _("unknown section (known: {known})").format(known=", ".join(SECTION_ORDER))))
        parts: dict[str, Any] = {}
        for name, section_cls in SECTIONS.items():
            parts[name] = section_cls.from_dict(data.get(name, {}), issues)
        raw_model = data.get("model", {})
        if not isinstance(raw_model, Mapping):
            issues.append(ConfigIssue("model", _("expected a table of settings")))
            raw_model = {}
        model_table = dict(raw_model)
        arch = model_table.pop("arch", "gpt")
        if not isinstance(arch, str) or arch not in ARCH_NAMES:
            # Translators: {known} lists the architectures' names (gpt, lstm, ...), kept as is.
            message = _("unknown architecture {arch} (known: {known})").format(arch=repr(arch), known=", ".join(ARCH_NAMES))
            issues.append(ConfigIssue("model.arch", message))
            parts["model"] = _default_model()
        else:
            parts["model"] = config_class(arch).from_dict(model_table, issues)
        config = cls(**parts)
        if not issues:
            issues.extend(config.cross_check())
        if issues:
            raise ConfigError(issues, source)
        return config

    def cross_check(self) -> list[ConfigIssue]:
        """Rules that span sections."""
        issues = []
        if self.model.objective == "seq2seq" and self.model.context_length < 4:
            issues.append(ConfigIssue("model.context_length", _("an encoder-decoder needs a context of at least 4 tokens")))
        kind = self.task.kind
        if kind in ("translate", "summarize") or (kind == "qa" and self.task.qa_mode == "generative"):
            if self.model.objective == "masked" and not self.finetune.base:
                # Translators: {kind} is a task kind (translate, qa, summarize); gpt and seq2seq are architecture names.
                message = _("a BERT-style encoder cannot write text, so it cannot {kind}; use gpt, an RNN or seq2seq").format(kind=kind)
                issues.append(ConfigIssue("task.kind", message))
        if self.finetune.method == "lora" and self.model.arch in ("rnn", "lstm", "gru") and not self.finetune.base:
            # Translators: full and freeze are values of the fine-tuning method, kept as is.
            message = _("LoRA adapts linear layers; recurrent models have only their output layer. Use full or freeze")
            issues.append(ConfigIssue("finetune.method", message))
        return issues

    def to_toml(self) -> str:
        """TOML with each setting's help as a comment, so a saved config documents itself."""
        lines = [f"# Studio run configuration (format {CONFIG_FORMAT_VERSION}).", f"format_version = {CONFIG_FORMAT_VERSION}", ""]
        for name in SECTION_ORDER:
            section = getattr(self, name)
            lines.append(f"[{name}]")
            if name == "model":
                lines.append(f'arch = "{section.arch}"')
            for spec in section.field_specs():
                if spec.help:
                    lines.append(f"# {spec.help}")
                lines.append(tomli_w.dumps({spec.name: getattr(section, spec.name)}).strip())
            lines.append("")
        return "\n".join(lines)

    def save(self, path: Path) -> None:
        # Atomic: a full disk or a kill leaves the previous config, never an empty or cut one.
        atomic_write_text(Path(path), self.to_toml())

    def with_absolute_paths(self, base: Path | None = None) -> RunConfig:
        """The same config with every corpus and example path made absolute (against ``base``, by
        default the current folder), so a run folder works from wherever it is resumed."""
        base = Path(base) if base else Path.cwd()

        def fix(paths: list[str]) -> list[str]:
            return [p if Path(p).expanduser().is_absolute() else str((base / p).resolve()) for p in paths]

        data = dataclasses.replace(self.data, paths=fix(self.data.paths), valid_paths=fix(self.data.valid_paths),
                                   test_paths=fix(self.data.test_paths))
        task = dataclasses.replace(self.task, paths=fix(self.task.paths), valid_paths=fix(self.task.valid_paths),
                                   test_paths=fix(self.task.test_paths))
        return self.replace(data=data, task=task)

    @classmethod
    def load(cls, path: Path | str, overrides: Iterable[str] = ()) -> RunConfig:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ConfigError(_("{path} does not exist").format(path=path)) from None
        except UnicodeDecodeError as e:
            # Translators: {reason} is the decoder's own words (in English); {byte} a position in the file.
            raise ConfigError(_("{path} is not UTF-8 text ({reason} at byte {byte})").format(path=path, reason=e.reason, byte=e.start)) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            # Translators: {reason} is the TOML reader's own words (in English).
            raise ConfigError(_("{path} is not valid TOML: {reason}").format(path=path, reason=e)) from None
        return cls.from_dict(apply_overrides(data, overrides), source=str(path))

    def with_overrides(self, overrides: Iterable[str]) -> RunConfig:
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides))

    def replace(self, **sections: Any) -> RunConfig:
        return dataclasses.replace(self, **sections)


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"train.lr=3e-4"`` -> ("train", "lr", 0.0003). Values are read as TOML, else as plain text."""
    if "=" not in text:
        # Translators: section.key=value and train.lr=3e-4 are written as is.
        raise ConfigError(ConfigIssue(text, _("an override looks like section.key=value, for example train.lr=3e-4")))
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if key.count(".") != 1 or not all(key.split(".")):
        # Translators: section.key and train.lr are written as is.
        raise ConfigError(ConfigIssue(key, _("an override key has the form section.key, for example train.lr")))
    section, name = key.split(".")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as  model.arch=lstm
    return section, name, value


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides to a config table.

    Switching ``model.arch`` keeps only the model settings the new architecture also has (context
    length, dropout, ...), so ``--set model.arch=lstm`` works on a GPT config file.
    """
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}
    for text in overrides:
        section, name, value = parse_override(text)
        if section not in SECTION_ORDER:
            # Translators: {known} lists the config file's section names, kept as is.
            raise ConfigError(ConfigIssue(section, _("unknown section (known: {known})").format(known=", ".join(SECTION_ORDER))))
        table = out.setdefault(section, {})
        if section == "model" and name == "arch" and value != table.get("arch", "gpt"):
            if value in ARCH_NAMES:
                keep = {s.name for s in config_class(value).field_specs()}
                table = {k: v for k, v in table.items() if k in keep}
                out["model"] = table
        table[name] = value
    return out


def migrate(data: dict[str, Any], source: str | None = None) -> dict[str, Any]:
    """Bring an older config table up to ``CONFIG_FORMAT_VERSION``."""
    version = data.get("format_version", CONFIG_FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(ConfigIssue("format_version", _("{version} is not a config format version").format(version=repr(version))), source)
    if version > CONFIG_FORMAT_VERSION:
        raise ConfigError(
            ConfigIssue("format_version", _("format {version} was written by a newer Studio (this one reads up to {supported})").format(
                version=version, supported=CONFIG_FORMAT_VERSION
            )),
            source,
        )
    # Upgrade steps, oldest first.
    model = data.get("model", {})  # no [model] table: the default architecture, a GPT
    if version < 2 and isinstance(model, Mapping) and model.get("arch", "gpt") == "gpt":
        data["model"] = {**_FORMAT_1_GPT_DEFAULTS, **model}
    data["format_version"] = CONFIG_FORMAT_VERSION
    return data


def setting_label(key: str) -> str:
    """The form label of a dotted setting (``train.lr`` -> "Learning rate"), as its English source
    text for ``_()``; the key itself when no section knows it. A ``model.`` key is looked up in
    every architecture, since runs compared side by side can differ in architecture."""
    if key == "model.arch":  # the section's tag, not a field of any one architecture
        return N_("Architecture")
    section, _dot, _name = key.partition(".")
    classes: Iterable[type[Section]] = (
        [config_class(arch) for arch in ARCH_NAMES] if section == "model" else [SECTIONS[section]] if section in SECTIONS else []
    )
    for cls in classes:
        for spec in cls.field_specs():
            if spec.key == key and spec.label:
                return spec.label
    return key

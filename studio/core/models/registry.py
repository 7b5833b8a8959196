"""Architectures by name. Adding one means one new file and one line here."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.config import ModelConfig
from studio.core.models.base import LanguageModel
from studio.core.models.bert import BERT, BERTConfig
from studio.core.models.gpt import GPT, GPTConfig
from studio.core.models.gru import GRUConfig, GRULanguageModel
from studio.core.models.lstm import LSTMConfig, LSTMLanguageModel
from studio.core.models.rnn import RNNConfig, RNNLanguageModel
from studio.core.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer


@dataclass(frozen=True)
class Architecture:
    name: str
    config_class: type[ModelConfig]
    model_class: type[LanguageModel]

    @property
    def label(self) -> str:
        return self.config_class.label


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("rnn", RNNConfig, RNNLanguageModel),
        Architecture("lstm", LSTMConfig, LSTMLanguageModel),
        Architecture("gru", GRUConfig, GRULanguageModel),
        Architecture("gpt", GPTConfig, GPT),
        Architecture("bert", BERTConfig, BERT),
        Architecture("seq2seq", Seq2SeqConfig, Seq2SeqTransformer),
    )
}
ARCH_NAMES: tuple[str, ...] = tuple(ARCHITECTURES)


def config_class(arch: str) -> type[ModelConfig]:
    return ARCHITECTURES[arch].config_class


def build_model(config: ModelConfig, vocab_size: int) -> LanguageModel:
    return ARCHITECTURES[config.arch].model_class(config, vocab_size)

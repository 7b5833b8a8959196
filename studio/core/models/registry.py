"""The network for each architecture name. Adding an architecture means its settings in
``studio.core.architectures``, one new file here, and one line below."""

from __future__ import annotations

from studio.core.models.base import LanguageModel
from studio.core.models.bert import BERT
from studio.core.models.gpt import GPT
from studio.core.models.gru import GRULanguageModel
from studio.core.models.lstm import LSTMLanguageModel
from studio.core.models.rnn import RNNLanguageModel
from studio.core.models.seq2seq import Seq2SeqTransformer
from studio.core.settings import ModelConfig

NETWORKS: dict[str, type[LanguageModel]] = {
    "rnn": RNNLanguageModel,
    "lstm": LSTMLanguageModel,
    "gru": GRULanguageModel,
    "gpt": GPT,
    "bert": BERT,
    "seq2seq": Seq2SeqTransformer,
}


def build_model(config: ModelConfig, vocab_size: int) -> LanguageModel:
    return NETWORKS[config.arch](config, vocab_size)

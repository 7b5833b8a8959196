"""What a model does inside, on a text a person types: the engine of the Inspect page and of
``studio inspect-model``.

Every computation reads the model through its own methods (``logits``, ``features``, ``encode``,
``decode``, ``mlm_logits``) or through hooks, never through a copy of its forward code:

- **tokens**: the run's tokenizer, with the characters each token covers;
- **predictions**: per position, the distribution over the token there. A causal model (GPT, RNN,
  LSTM, GRU) reads a start token and then the text, so every token of the text gets a prediction,
  and one more row holds the token that would come next. An encoder-decoder reads a source with its
  encoder and predicts a target with its decoder. A BERT-style encoder predicts each token with that
  token masked out (all of them at once, one masked copy of the text per row). The top candidates
  are shown as sampling would draw them (``decoding.sampling.sampling_probabilities``: specials
  banned, temperature, top-k, top-p), and each real token's surprisal (−log₂ p) is read from the
  model's own distribution at temperature 1, the one its training loss scores;
- **attention**: the attention modules keep their probabilities when asked
  (``SelfAttention.keep_attention``), computed from the very queries and keys they attend with;
- **recurrent states**: a forward pre-hook captures what the fused ``nn.LSTM``/``GRU``/``RNN``
  read; the stack is then run again one layer at a time (a one-layer module with that layer's
  weights, so each layer's outputs exist), and the gates at each step are the layer's own weights
  applied to its input and previous output;
- **embeddings**: the input embedding table, its 2-D map by an exact PCA, token search, and
  nearest neighbours by cosine similarity.

Everything here is bounded before it allocates: texts longer than the model's context are refused
with a message, and the attention of very large models on long texts is refused too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from studio.core.bits import bits_per_unit, units_per_token
from studio.core.data.special_tokens import BOS_ID, EOS_ID, MASK_ID, NUM_SPECIAL, PAD_ID, SPECIAL_TOKENS
from studio.core.data.tokenizers import Tokenizer
from studio.core.decoding.options import DecodingSettings
from studio.core.decoding.sampling import ban_specials, sampling_probabilities
from studio.core.errors import StudioError
from studio.core.i18n import _
from studio.core.inference.loading import load_model
from studio.core.models.base import LanguageModel
from studio.core.models.bert import BERT
from studio.core.models.gpt import GPT
from studio.core.models.recurrent import RecurrentLM
from studio.core.models.seq2seq import Seq2SeqTransformer
from studio.core.models.transformer_layers import Block, CrossAttention, SelfAttention

Objective = Literal["causal", "masked", "seq2seq"]
View = Literal["tokens", "predictions", "attention", "recurrent", "embeddings"]

# Bounds, checked before anything is allocated.
MAX_TEXT_CHARACTERS = 100_000  # before tokenizing: a pasted book would tokenize for seconds only to be refused
MAX_CANDIDATES = 100  # candidates per position
MAX_NEIGHBOURS = 200
MAX_ATTENTION_VALUES = 1 << 25  # every layer's and head's weights together: 128 MB of float32
MASKED_BATCH_TOKENS = 4096  # a BERT reads one masked copy of the text per token, this many tokens per forward pass
SURPRISING_SHOWN = 5

# The default view of the probabilities: sampling at temperature 1 with nothing cut.
PLAIN_SAMPLING = DecodingSettings(mode="sample", temperature=1.0, top_k=0, top_p=1.0)

GATE_NAMES: dict[str, tuple[str, ...]] = {
    # PyTorch's order of the gates in weight_ih / weight_hh, which is what the chunks below rely on.
    "lstm": ("input", "forget", "cell", "output"),  # "cell": the candidate g = tanh(...), in [-1, 1]
    "gru": ("reset", "update", "new"),  # "new": the candidate n = tanh(...), in [-1, 1]
    "rnn": (),
}


class InsightError(StudioError):
    """The model cannot show this (a view its architecture does not have, a text too long)."""


# ---- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    id: int
    text: str  # the characters of the input it covers (byte-level BPE may give two tokens the same character)
    start: int
    end: int


def tokenize(tokenizer: Tokenizer, text: str) -> list[Token]:
    """``text`` as the run's tokenizer cuts it, each token with the characters it covers."""
    if len(text) > MAX_TEXT_CHARACTERS:
        raise InsightError(_("The text has {characters:,} characters; inspect at most {most:,} at once.").format(
            characters=len(text), most=MAX_TEXT_CHARACTERS))
    ids, offsets = tokenizer.encode_with_offsets(text)
    return [Token(i, text[a:b], a, b) for i, (a, b) in zip(ids, offsets, strict=True)]


def token_label(tokenizer: Tokenizer, token_id: int) -> str:
    """How a token is shown on its own: a special token by its name, any other as it decodes."""
    return SPECIAL_TOKENS[token_id] if 0 <= token_id < NUM_SPECIAL else tokenizer.id_to_token(token_id)


@dataclass(frozen=True)
class Reading:
    """One text laid out as the model reads it."""

    objective: Objective
    text: str  # the text whose tokens are predicted (an encoder-decoder's target)
    tokens: list[Token]  # its tokens: one prediction each
    inputs: list[int]  # what the model (its decoder) reads: a start token, then the tokens; a BERT reads the tokens
    input_labels: list[str]  # each input as shown (the start token by its name)
    source: list[Token]  # what an encoder-decoder's encoder reads; empty for the others
    source_text: str

    @property
    def characters(self) -> int:
        """Characters the predicted tokens stand for: what bits per character divide by."""
        return len(self.text)


# ---- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distributions:
    """Full distributions at every position ([P, V] float32 on the CPU): P is one per token, plus
    one for the token after the text for the models that write left to right."""

    logits: Tensor  # the model's raw scores
    model: Tensor  # softmax(logits): what the training loss scores (temperature 1, nothing cut)
    sampling: Tensor  # what sampling draws from under the settings; greedy: all on the likeliest token


@dataclass(frozen=True)
class Candidate:
    token_id: int
    text: str
    probability: float  # under the sampling settings
    model_probability: float  # the model's own (temperature 1, nothing cut or banned)


@dataclass(frozen=True)
class Position:
    index: int  # the token of ``Reading.tokens`` this row predicts; len(tokens): the token after the text
    actual: Candidate | None  # the token really there (None after the text)
    candidates: list[Candidate]  # the likeliest under the settings, likeliest first (zero-probability ones left out)
    surprisal: float | None  # −log₂ of the actual token's model probability, in bits


@dataclass(frozen=True)
class Surprisal:
    bits: list[float]  # per token of the reading
    total_bits: float
    bits_per_token: float | None
    bits_per_character: float | None
    most_surprising: list[int]  # token indices, most surprising first


@dataclass(frozen=True)
class Predictions:
    reading: Reading
    settings: DecodingSettings
    positions: list[Position]
    surprisal: Surprisal


@dataclass(frozen=True)
class AttentionMap:
    stack: Literal["encoder", "decoder"]  # a GPT is a decoder, a BERT an encoder
    kind: Literal["self", "cross"]
    layer: int  # from 0, within its stack
    causal: bool
    queries: list[str]  # a label per row
    keys: list[str]  # a label per column
    weights: Tensor  # [heads, queries, keys] float32 on the CPU; each row sums to 1

    @property
    def average(self) -> Tensor:
        """The heads' mean [queries, keys] (its rows still sum to 1)."""
        return self.weights.mean(dim=0)


@dataclass(frozen=True)
class RecurrentLayer:
    layer: int
    hidden_norm: Tensor  # [T]: ‖h_t‖, the length of the layer's state after each input
    cell_norm: Tensor | None  # [T]: ‖c_t‖, an LSTM's memory cell
    gates: dict[str, Tensor]  # name (GATE_NAMES) -> [T, hidden]; the sigmoid gates lie in [0, 1]


@dataclass(frozen=True)
class RecurrentStates:
    reading: Reading
    cell: Literal["rnn", "lstm", "gru"]
    labels: list[str]  # the input at each position
    layers: list[RecurrentLayer]


@dataclass(frozen=True)
class PCA:
    coords: Tensor  # [N, n]: each row of the matrix on the principal axes
    axes: Tensor  # [n, d]: unit directions, the largest variance first
    explained: Tensor  # [n]: the share of the total variance along each axis


@dataclass(frozen=True)
class EmbeddingMap:
    coords: Tensor  # [V, 2]: each token's embedding on the two principal axes
    explained: tuple[float, float]  # share of the variance each axis shows
    labels: list[str]  # each token as shown
    special: int  # ids below this are the special tokens (<pad>, <eos>, ...), which a page may hide


@dataclass(frozen=True)
class Neighbour:
    token_id: int
    text: str
    similarity: float  # cosine, in [-1, 1]


# ---- computations on tensors (no model needed) ------------------------------------------------


def principal_components(matrix: Tensor, n: int = 2) -> PCA:
    """The exact PCA of the rows of ``matrix`` [N, d], by an SVD of the centred matrix
    (``torch.linalg.svd``). Not ``torch.pca_lowrank``: it is randomized, so the same table would
    give a slightly different map each time, and an embedding table is small enough (V x d, d at
    most a few thousand) for the exact one.

    An axis's sign is arbitrary; each is turned so its largest loading is positive (as
    scikit-learn does), so the same table always gives the same map."""
    x = matrix.detach().float()
    x = x - x.mean(dim=0, keepdim=True)
    n = max(1, min(n, *x.shape))
    _u, s, vh = torch.linalg.svd(x, full_matrices=False)
    axes = vh[:n]
    signs = torch.sign(axes.gather(1, axes.abs().argmax(dim=1, keepdim=True))).squeeze(1)
    axes = axes * torch.where(signs == 0, torch.ones_like(signs), signs)[:, None]
    variance = s.square()
    total = variance.sum()
    explained = variance[:n] / total if total > 0 else torch.zeros(n)
    return PCA(x @ axes.T, axes, explained)


def cosine_neighbours(vectors: Tensor, index: int, k: int) -> list[tuple[int, float]]:
    """The ``k`` rows of ``vectors`` nearest row ``index`` by cosine similarity, nearest first.
    The row itself is one of them (similarity 1), unless another points the same way."""
    unit = F.normalize(vectors.detach().float(), dim=1)
    similarity = unit @ unit[index]
    top = torch.topk(similarity, min(k, len(similarity)))
    return list(zip(top.indices.tolist(), top.values.tolist(), strict=True))


def find_labels(labels: list[str], query: str, limit: int = 50) -> list[tuple[int, str]]:
    """The (id, label) of the tokens whose label contains ``query`` (ignoring case), the exact ones
    first. Takes the labels, so a page that already holds them (an EmbeddingMap's) searches
    without the model."""
    if not query:
        return []
    wanted = query.casefold()
    found = [(i, label) for i, label in enumerate(labels) if wanted in label.casefold()]
    # Exact matches first, then the special tokens last (<pad> contains an "a" too), shortest first.
    found.sort(key=lambda item: (item[1].casefold() != wanted, item[0] < NUM_SPECIAL, len(item[1]), item[0]))
    return found[: max(0, limit)]


def body(model: nn.Module) -> LanguageModel:
    """The language model inside ``model``: itself, or the body under a task head."""
    base = getattr(model, "base", model)
    if not isinstance(base, LanguageModel):
        raise InsightError(_("This model has no language-model body that Studio can inspect."))
    return base


@contextmanager
def recording_attention(modules: list[SelfAttention | CrossAttention]) -> Iterator[None]:
    """While inside, each of ``modules`` keeps its attention probabilities in ``.attention``
    after every forward call; afterwards they are dropped and the modules are back to SDPA alone."""
    for m in modules:
        m.keep_attention = True
    try:
        yield
    finally:
        for m in modules:
            # Back to the class defaults exactly (no instance attributes left): a torch.compile'd
            # training step guards on these attributes, and a leftover one would recompile it.
            vars(m).pop("keep_attention", None)
            vars(m).pop("attention", None)


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) and no autograd, then the model as it was: a live run's model is
    inspected between its steps."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


# ---- the model -------------------------------------------------------------------------------


class ModelInsight:
    """One model and its tokenizer, inspected: the Inspect page holds one per checkpoint shown."""

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, label: str = ""):
        self.model = model
        self.lm = body(model)
        self.tokenizer = tokenizer
        self.label = label
        # A task head (a classifier, extractive QA) replaced the language model's output: the
        # body still has its old output layer, but it is not what the fine-tuned body feeds.
        self.text_output = self.lm is model
        self.objective: Objective = self.lm.config.objective
        self.arch = self.lm.config.arch
        self.context = self.lm.config.context_length
        self.device = next(self.lm.parameters()).device

    @classmethod
    def load(cls, ref: str | Path, label: str = "auto", device: str | torch.device = "cpu") -> ModelInsight:
        """A run (folder or name) or a checkpoint folder, through ``load_model``; ``label`` is
        "best", "last" or "auto"."""
        loaded = load_model(ref, label, device)
        return cls(loaded.model, loaded.tokenizer, loaded.label)

    @property
    def views(self) -> list[View]:
        """What this model can show, for the page to enable its views."""
        out: list[View] = ["tokens"]
        if self.text_output:
            out.append("predictions")
        if isinstance(self.lm, GPT | BERT | Seq2SeqTransformer):
            out.append("attention")
        if isinstance(self.lm, RecurrentLM):
            out.append("recurrent")
        out.append("embeddings")
        return out

    # ---- reading a text ----------------------------------------------------------------------

    def tokens(self, text: str) -> list[Token]:
        return tokenize(self.tokenizer, text)

    def read(self, text: str, target: str | None = None) -> Reading:
        """``text`` laid out as this model reads it. An encoder-decoder reads ``text`` as its source
        and predicts ``target``; without one it splits the text in two, as its pre-training did
        (the first half is the source). Refuses what the model cannot read at once."""
        if not text.strip():
            raise InsightError(_("Type a text to inspect."))
        tokens = self.tokens(text)
        if not tokens:
            raise InsightError(_("The tokenizer makes no tokens of this text."))
        if self.objective == "masked":
            self._check_length(len(tokens), self.context)
            return Reading("masked", text, tokens, [t.id for t in tokens], [t.text for t in tokens], [], "")
        if self.objective == "seq2seq":
            if target is None:
                half = (len(tokens) + 1) // 2
                source, tokens = tokens[:half], tokens[half:]
                cut = tokens[0].start if tokens else len(text)
                source_text, text = text[:cut], text[cut:]
            else:
                source, source_text, text = tokens, text, target
                tokens = self.tokens(target)
            self._check_length(len(source), self.context)
            self._check_length(len(tokens), self.context - 1, start="<bos>")
            return Reading("seq2seq", text, tokens, [BOS_ID, *(t.id for t in tokens)], ["<bos>", *(t.text for t in tokens)],
                           source, source_text)
        # Documents in the training stream follow an <eos>, so a text starts after one: the model
        # then predicts even the first token, "the start of a document".
        self._check_length(len(tokens), self.context - 1, start="<eos>")
        return Reading("causal", text, tokens, [EOS_ID, *(t.id for t in tokens)], ["<eos>", *(t.text for t in tokens)], [], "")

    def _check_length(self, tokens: int, most: int, start: str = "") -> None:
        if tokens <= most:
            return
        if start:
            # Translators: {start} is a special token (<eos>, <bos>), written as is.
            message = _("The text has {tokens} tokens, and this model reads at most {most} at once (its context is "
                        "{context} tokens, one of them the start token {start}). Shorten the text.")
        else:
            message = _("The text has {tokens} tokens, and this model reads at most {most} at once (its context). "
                        "Shorten the text.")
        raise InsightError(message.format(tokens=tokens, most=most, context=self.context, start=start))

    def _ids(self, ids: list[int]) -> Tensor:
        return torch.tensor([ids], dtype=torch.long, device=self.device)

    def _source(self, reading: Reading) -> Tensor:
        return self._ids([t.id for t in reading.source] or [PAD_ID])

    # ---- predictions -------------------------------------------------------------------------

    def distributions(self, reading: Reading, settings: DecodingSettings = PLAIN_SAMPLING) -> Distributions:
        """The full distribution at every position of ``reading``, as the model computes it and as
        sampling under ``settings`` would draw from it."""
        if not self.text_output:
            raise InsightError(_("This model was fine-tuned with a task head of its own, so it no longer predicts "
                                 "tokens. Its attention, states and embeddings can still be inspected."))
        settings.validate()
        with _evaluating(self.model):
            logits = self._logits(reading).float().cpu()
        if settings.greedy:
            # Greedy decoding always takes the likeliest token that is not a special one.
            best = ban_specials(logits).argmax(dim=-1)
            sampling = F.one_hot(best, logits.size(-1)).float()
        else:
            sampling = sampling_probabilities(logits, settings)
        return Distributions(logits, logits.softmax(dim=-1), sampling)

    def _logits(self, reading: Reading) -> Tensor:
        """[P, V] through the model's own methods."""
        lm = self.lm
        if isinstance(lm, Seq2SeqTransformer):
            return lm(self._source(reading), self._ids(reading.inputs))[0]
        if isinstance(lm, BERT):
            return self._masked_logits(lm, reading.inputs)
        return lm.logits(self._ids(reading.inputs))[0]

    def _masked_logits(self, lm: BERT, ids: list[int]) -> Tensor:
        """Each token's logits with that token masked out: row i of the batch is the text with
        token i replaced by <mask>, and only its hidden state at i goes through the MLM head."""
        n = len(ids)
        batch = torch.tensor(ids, dtype=torch.long, device=self.device).repeat(n, 1)
        where = torch.arange(n, device=self.device)
        batch[where, where] = MASK_ID
        rows = max(1, MASKED_BATCH_TOKENS // n)
        out = []
        for a in range(0, n, rows):
            hidden = lm.encode(batch[a : a + rows])
            picked = where[a : a + rows]
            out.append(lm.mlm_logits(hidden[torch.arange(len(picked), device=self.device), picked]))
        return torch.cat(out)

    def predictions(self, reading: Reading, settings: DecodingSettings = PLAIN_SAMPLING, top_k: int = 5) -> Predictions:
        """Per position the ``top_k`` likeliest tokens under ``settings`` (the bar list), and the
        surprisal of each real token (the coloured text and its means)."""
        top_k = max(1, min(top_k, MAX_CANDIDATES))
        d = self.distributions(reading, settings)
        top = torch.topk(d.sampling, min(top_k, d.sampling.size(-1)), dim=-1)
        targets = [t.id for t in reading.tokens]
        # Bits from log-softmax rather than log(softmax): a very unlikely token stays finite.
        log_p = d.logits.log_softmax(dim=-1)
        bits = [float(-log_p[i, t]) / math.log(2) for i, t in enumerate(targets)]
        positions = []
        for i in range(d.logits.size(0)):
            candidates = [self._candidate(int(j), d, i) for j, p in zip(top.indices[i], top.values[i], strict=True) if p > 0]
            actual = self._candidate(targets[i], d, i) if i < len(targets) else None
            positions.append(Position(i, actual, candidates, bits[i] if i < len(targets) else None))
        total = sum(bits)
        per_token = total / len(bits) if bits else None
        per_char = bits_per_unit(total * math.log(2) / len(bits), units_per_token(reading.characters, len(bits))) if bits else None
        order = sorted(range(len(bits)), key=lambda i: -bits[i])[:SURPRISING_SHOWN]
        return Predictions(reading, settings, positions, Surprisal(bits, total, per_token, per_char, order))

    def _candidate(self, token_id: int, d: Distributions, row: int) -> Candidate:
        return Candidate(token_id, token_label(self.tokenizer, token_id), float(d.sampling[row, token_id]),
                         float(d.model[row, token_id]))

    # ---- attention ---------------------------------------------------------------------------

    def _attention_layers(self) -> list[_AttentionLayer]:
        lm = self.lm
        if isinstance(lm, GPT):
            return [_AttentionLayer("decoder", "self", i, b.attn, True) for i, b in enumerate(_blocks(lm.blocks))]
        if isinstance(lm, BERT):
            return [_AttentionLayer("encoder", "self", i, b.attn, False) for i, b in enumerate(_blocks(lm.blocks))]
        if isinstance(lm, Seq2SeqTransformer):
            out = [_AttentionLayer("encoder", "self", i, b.attn, False) for i, b in enumerate(_blocks(lm.encoder))]
            for i, b in enumerate(_blocks(lm.decoder)):
                out.append(_AttentionLayer("decoder", "self", i, b.attn, True))
                assert b.cross is not None  # a decoder block always has one
                out.append(_AttentionLayer("decoder", "cross", i, b.cross, False))
            return out
        raise InsightError(_("Attention exists only in the Transformer models (GPT, BERT, encoder-decoder); "
                             "for this recurrent model, look at its states and gates."))

    def attention(self, reading: Reading) -> list[AttentionMap]:
        """Every layer's and head's attention probabilities on ``reading``: self-attention (causal
        in a GPT and in a decoder), and an encoder-decoder's cross-attention."""
        layers = self._attention_layers()
        source = [t.text for t in reading.source]
        inputs = reading.input_labels
        sizes = {"encoder": len(source) if isinstance(self.lm, Seq2SeqTransformer) else len(inputs), "decoder": len(inputs)}
        values = sum(a.module.n_heads * sizes[a.stack] * (len(source) if a.kind == "cross" else sizes[a.stack]) for a in layers)
        if values > MAX_ATTENTION_VALUES:
            raise InsightError(_("This model's attention on so long a text would take {mb:,} MB. Inspect a shorter text.").format(
                mb=values * 4 >> 20))
        modules = [a.module for a in layers]
        with _evaluating(self.model), recording_attention(modules):
            lm = self.lm
            if isinstance(lm, Seq2SeqTransformer):
                lm(self._source(reading), self._ids(reading.inputs))
            else:
                lm.features(self._ids(reading.inputs))
            kept = [m.attention for m in modules]
        maps = []
        for a, weights in zip(layers, kept, strict=True):
            assert weights is not None  # every module ran once
            if a.stack == "encoder" and isinstance(self.lm, Seq2SeqTransformer):
                queries, keys = source, source
            else:
                queries, keys = inputs, source if a.kind == "cross" else inputs
            maps.append(AttentionMap(a.stack, a.kind, a.layer, a.causal, queries, keys, weights[0].float().cpu()))
        return maps

    # ---- recurrent states --------------------------------------------------------------------

    def recurrent(self, reading: Reading) -> RecurrentStates:
        """Per layer, along the text: the state's length and, for an LSTM or a GRU, every gate."""
        lm = self.lm
        if not isinstance(lm, RecurrentLM):
            raise InsightError(_("States and gates exist only in the recurrent models (RNN, LSTM, GRU); "
                                 "for this Transformer, look at its attention."))
        rnn = lm.rnn
        cell: Literal["rnn", "lstm", "gru"] = "lstm" if isinstance(rnn, nn.LSTM) else "gru" if isinstance(rnn, nn.GRU) else "rnn"
        captured: list[Tensor] = []
        # What the fused stack really reads (the embedding, after whatever the model does to it).
        handle = rnn.register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
        with _evaluating(self.model):
            try:
                lm.features(self._ids(reading.inputs))
            finally:
                handle.remove()
            x = captured[0]
            layers = []
            for layer in range(rnn.num_layers):
                out = _one_layer(rnn, layer)(x)[0]  # [1, T, H]: this layer's h_t at every t
                layers.append(_layer_states(rnn, cell, layer, x[0].float(), out[0].float()))
                x = out  # the next layer reads this one's outputs (no dropout between them in eval)
        return RecurrentStates(reading, cell, reading.input_labels, layers)

    # ---- embeddings --------------------------------------------------------------------------

    def embeddings(self) -> Tensor:
        """The input embedding table [V, d]: one vector per token id."""
        for name in ("tok_emb", "embed"):
            table = getattr(self.lm, name, None)
            if isinstance(table, nn.Embedding):
                return table.weight.detach()
        raise InsightError(_("This model has no token embedding table to show."))

    def embedding_map(self, align_to: Tensor | None = None) -> EmbeddingMap:
        """Every token's embedding on the table's two principal axes. ``align_to`` (the coords of a
        previous map, say the checkpoint before) turns each axis to agree with it, so an
        animation across checkpoints does not flip for no reason."""
        table = self.embeddings()
        pca = principal_components(table, 2)
        coords = pca.coords.cpu()
        if align_to is not None and align_to.shape == coords.shape:
            flip = torch.where((coords * align_to.to(coords)).sum(dim=0) < 0, -1.0, 1.0)
            coords = coords * flip
        explained = pca.explained.tolist() + [0.0, 0.0]
        return EmbeddingMap(coords, (explained[0], explained[1]), self.token_labels(), NUM_SPECIAL)

    def token_labels(self) -> list[str]:
        return [token_label(self.tokenizer, i) for i in range(self.lm.vocab_size)]

    def find_tokens(self, query: str, limit: int = 50) -> list[tuple[int, str]]:
        """Tokens whose text contains ``query`` (ignoring case), the exact ones first."""
        return find_labels(self.token_labels(), query, limit)

    def neighbours(self, token_id: int, k: int = 10) -> list[Neighbour]:
        """The ``k`` tokens whose embeddings point most nearly the same way as ``token_id``'s."""
        table = self.embeddings()
        if not 0 <= token_id < table.size(0):
            raise InsightError(_("There is no token {id} in this model (it has {count} tokens).").format(id=token_id, count=table.size(0)))
        found = cosine_neighbours(table, token_id, max(1, min(k, MAX_NEIGHBOURS)))
        return [Neighbour(i, token_label(self.tokenizer, i), s) for i, s in found]


@dataclass(frozen=True)
class _AttentionLayer:
    stack: Literal["encoder", "decoder"]
    kind: Literal["self", "cross"]
    layer: int
    module: SelfAttention | CrossAttention
    causal: bool


def _blocks(stack: nn.ModuleList) -> list[Block]:
    return [b for b in stack if isinstance(b, Block)]


def _one_layer(rnn: nn.RNNBase, layer: int) -> nn.RNNBase:
    """A one-layer copy of layer ``layer`` of a fused stack (its own weights, copied), so that
    layer's outputs exist: the fused call returns only the top layer's."""
    size = rnn.input_size if layer == 0 else rnn.hidden_size
    one: nn.RNNBase
    if isinstance(rnn, nn.LSTM):
        one = nn.LSTM(size, rnn.hidden_size, num_layers=1, bias=rnn.bias, batch_first=rnn.batch_first)
    elif isinstance(rnn, nn.GRU):
        one = nn.GRU(size, rnn.hidden_size, num_layers=1, bias=rnn.bias, batch_first=rnn.batch_first)
    else:
        one = nn.RNN(size, rnn.hidden_size, num_layers=1, bias=rnn.bias, batch_first=rnn.batch_first, nonlinearity=rnn.nonlinearity)
    weights = {name.removesuffix(f"_l{layer}") + "_l0": p for name, p in rnn.named_parameters() if name.endswith(f"_l{layer}")}
    one.load_state_dict(weights)
    return one.to(device=weights["weight_ih_l0"].device, dtype=weights["weight_ih_l0"].dtype).eval()


def _layer_states(rnn: nn.RNNBase, cell: str, layer: int, x: Tensor, out: Tensor) -> RecurrentLayer:
    """One layer's states and gates from its input ``x`` [T, in] and outputs ``out`` [T, H]. The
    gates at step t are the layer's weights applied to x_t and h_{t-1} (the state before the
    first token is zero, as in training), in PyTorch's documented equations for nn.LSTM/nn.GRU."""
    hidden_norm = out.norm(dim=-1)
    if cell == "rnn":
        return RecurrentLayer(layer, hidden_norm.cpu(), None, {})
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}").float(), getattr(rnn, f"weight_hh_l{layer}").float()
    b_ih = getattr(rnn, f"bias_ih_l{layer}").float() if rnn.bias else torch.zeros(w_ih.size(0), device=x.device)
    b_hh = getattr(rnn, f"bias_hh_l{layer}").float() if rnn.bias else torch.zeros(w_hh.size(0), device=x.device)
    h_prev = torch.cat([torch.zeros_like(out[:1]), out[:-1]])
    from_input, from_state = x @ w_ih.T + b_ih, h_prev @ w_hh.T + b_hh
    if cell == "lstm":
        i, f, g, o = (from_input + from_state).chunk(4, dim=-1)
        gates = {"input": i.sigmoid(), "forget": f.sigmoid(), "cell": g.tanh(), "output": o.sigmoid()}
        # The memory cell, c_t = f_t c_{t-1} + i_t g_t: the fused call returns only the last one.
        c = torch.zeros_like(out[0])
        cells = []
        for t in range(out.size(0)):
            c = gates["forget"][t] * c + gates["input"][t] * gates["cell"][t]
            cells.append(c)
        return RecurrentLayer(layer, hidden_norm.cpu(), torch.stack(cells).norm(dim=-1).cpu(), {k: v.cpu() for k, v in gates.items()})
    r_i, z_i, n_i = from_input.chunk(3, dim=-1)
    r_h, z_h, n_h = from_state.chunk(3, dim=-1)
    r = (r_i + r_h).sigmoid()
    gates = {"reset": r, "update": (z_i + z_h).sigmoid(), "new": (n_i + r * n_h).tanh()}
    return RecurrentLayer(layer, hidden_norm.cpu(), None, {k: v.cpu() for k, v in gates.items()})

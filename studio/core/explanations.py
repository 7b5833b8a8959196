"""Side notes that teach: what each architecture, loss, optimizer and key setting is, in two or three
sentences, with its formula where one helps and the values people typically use.

They follow the article Studio is built on, and correct it where it is wrong: BERT's language model
is a masked-token prediction with cross-entropy (a CRF is a tagging layer, not a language model),
and accuracy is a metric that a fine-tuning run reports, never the loss it minimises.

Each note is rich text (HTML that Qt renders: formulas with sub- and superscripts, never LaTeX
source), marked with ``N_`` and translated where it is shown. Notes are looked up by the setting
they explain (``"train.lr"``), by architecture (``"arch.lstm"``) or by topic (``"loss.cross_entropy"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.i18n import N_, _


@dataclass(frozen=True)
class Note:
    key: str
    title: str  # English; translated by ``title_text``
    body: str  # English rich text; translated by ``body_html``

    def title_text(self) -> str:
        return _(self.title)

    def body_html(self) -> str:
        return _(self.body)


_NOTES = [
    # ---- architectures --------------------------------------------------------------------
    Note("arch.rnn", N_("Recurrent network (RNN)"), N_(
        "Reads the text one token at a time and carries a hidden state forward: "
        "<i>h</i><sub>t</sub> = tanh(<i>W</i><i>x</i><sub>t</sub> + <i>U</i><i>h</i><sub>t−1</sub> + <i>b</i>). "
        "Simple and small, but gradients shrink or explode over long spans, so it forgets quickly. "
        "Typical: 1–2 layers of 128–512 units.")),
    Note("arch.lstm", N_("Long short-term memory (LSTM)"), N_(
        "A recurrent network with a memory cell and three gates that decide what to forget, what to "
        "write and what to show: <i>c</i><sub>t</sub> = <i>f</i><sub>t</sub> ⊙ <i>c</i><sub>t−1</sub> + "
        "<i>i</i><sub>t</sub> ⊙ <i>g</i><sub>t</sub>, <i>h</i><sub>t</sub> = <i>o</i><sub>t</sub> ⊙ tanh(<i>c</i><sub>t</sub>). "
        "The additive cell path keeps gradients alive over long spans. Typical: 2 layers of 256–1024 units, "
        "dropout 0.1–0.3.")),
    Note("arch.gru", N_("Gated recurrent unit (GRU)"), N_(
        "An LSTM with two gates (update and reset) and no separate cell: "
        "<i>h</i><sub>t</sub> = (1 − <i>z</i><sub>t</sub>) ⊙ <i>h</i><sub>t−1</sub> + <i>z</i><sub>t</sub> ⊙ <i>ĥ</i><sub>t</sub>. "
        "About a quarter fewer parameters than an LSTM of the same width, and often as good on small corpora.")),
    Note("arch.gpt", N_("GPT-style decoder (Transformer)"), N_(
        "A stack of Transformer layers in which every token attends to the tokens before it (causal "
        "attention), trained to predict the next token. Everything it knows about order comes from its "
        "position embeddings (learned, or rotary). Typical small models: 4–12 layers, width 128–768, "
        "4–12 attention heads.")),
    Note("arch.bert", N_("BERT-style encoder"), N_(
        "A Transformer whose tokens attend in both directions. It learns by masked-language modelling: "
        "15% of the tokens are hidden (80% replaced by &lt;mask&gt;, 10% by a random token, 10% kept) and "
        "the loss is the cross-entropy of predicting them. It does not use a CRF: that is a tagging layer, "
        "not a language model. Its states feed classifiers and extractive question answering.")),
    Note("arch.seq2seq", N_("Encoder-decoder Transformer"), N_(
        "An encoder reads the source with attention in both directions; a decoder writes the target one "
        "token at a time, attending to its own past (causal) and to the encoder (cross-attention), as in "
        "“Attention Is All You Need”. The natural shape for translation and summarization.")),
    Note("topic.attention", N_("Attention"), N_(
        "Each token asks a question (query <i>q</i>) and every other token offers a key <i>k</i> and a value "
        "<i>v</i>: Attention(<i>Q</i>, <i>K</i>, <i>V</i>) = softmax(<i>Q</i><i>K</i><sup>T</sup> / √<i>d</i>) <i>V</i>. "
        "Each row of the softmax sums to 1: how much each token contributes to this one. Several heads "
        "look for different things at once.")),
    Note("topic.embeddings", N_("Token embeddings (word vectors)"), N_(
        "Every token id is looked up in a table of learned vectors of <i>d</i> numbers. Tokens used alike "
        "end up close together, which is what lets a model generalise from one word to its neighbours. "
        "With tied weights the same table also scores the next token.")),
    # ---- losses and metrics ---------------------------------------------------------------
    Note("loss.cross_entropy", N_("Cross-entropy loss"), N_(
        "The average surprise of the correct next token: <i>L</i> = −(1/<i>N</i>) Σ<sub><i>t</i></sub> "
        "log <i>p</i>(<i>x</i><sub>t</sub> | <i>x</i><sub>&lt;t</sub>), in nats. A model that guesses uniformly "
        "over <i>V</i> tokens starts at log <i>V</i> (about 4.2 for 64 characters). Lower is better.")),
    Note("loss.perplexity", N_("Perplexity and bits per character"), N_(
        "Perplexity = e<sup><i>L</i></sup>: the model is as unsure as if it chose among that many tokens. "
        "Bits per character = <i>L</i> / ln 2 × tokens / characters, which compares models with different "
        "tokenizers (characters, words or BPE pieces).")),
    Note("loss.metrics", N_("Loss and metrics"), N_(
        "A fine-tuning run minimises cross-entropy (on the label, the answer span, or the target tokens). "
        "Accuracy, F1, BLEU, ROUGE and exact match are metrics: they say how good the answers are, but "
        "they cannot be minimised directly, so they are never the loss.")),
    # ---- optimizers -----------------------------------------------------------------------
    Note("optimizer.adamw", N_("AdamW"), N_(
        "Adam with weight decay applied to the weights directly instead of through the gradient. Adam keeps "
        "running averages of each gradient <i>m</i> and its square <i>v</i> and steps by "
        "<i>η</i> · <i>m̂</i> / (√<i>v̂</i> + ε), so every parameter gets its own step size. The default for "
        "Transformers; typical β<sub>1</sub> = 0.9, β<sub>2</sub> = 0.95–0.999, weight decay 0.01–0.1.")),
    Note("optimizer.adam", N_("Adam"), N_(
        "Adaptive moments: a per-parameter step from running averages of the gradient and its square. "
        "Here weight decay is added to the gradient (L2), which interacts with the adaptive scaling; AdamW "
        "usually generalises better.")),
    Note("optimizer.sgd", N_("SGD with momentum"), N_(
        "Steps against the gradient, with a velocity that accumulates past steps: "
        "<i>v</i> ← μ<i>v</i> + ∇<i>L</i>, θ ← θ − <i>η</i><i>v</i>. Needs a larger learning rate "
        "(0.1–1 for RNNs) and more care than Adam, but uses half the memory.")),
    Note("optimizer.muon", N_("Muon"), N_(
        "Momentum orthogonalised by Newton-Schulz: each hidden weight matrix steps by its momentum with "
        "every singular value pushed towards 1, so no one direction dominates the step. Embeddings, the "
        "output head, biases and norm gains take AdamW steps. Here the iteration runs in float32 (fast on a "
        "CPU) and the step is scaled to AdamW's size, so the same learning rate suits both; momentum "
        "0.9–0.95.")),
    # ---- key settings ---------------------------------------------------------------------
    Note("train.lr", N_("Learning rate"), N_(
        "How far each step moves the weights. Too high and the loss jumps or becomes NaN; too low and "
        "training crawls. Small character models here: 1e-3 to 5e-3 with AdamW; larger models want smaller "
        "rates. It rises linearly during warm-up, then decays.")),
    Note("train.batch_size", N_("Batch size"), N_(
        "Sequences averaged in each step. Larger batches give a smoother gradient and use the hardware "
        "better, but cost memory; gradient accumulation gives a large effective batch in small pieces. "
        "Typical: 8–64 sequences.")),
    Note("schedule.warmup_steps", N_("Warm-up"), N_(
        "The learning rate climbs from zero over the first steps, while Adam's running averages are still "
        "unreliable. A few hundred steps, or 1–5% of the run.")),
    Note("optimizer.weight_decay", N_("Weight decay"), N_(
        "Pulls every weight a little towards zero at each step, which keeps the model simpler and helps it "
        "generalise. Typical 0.01–0.1; not applied to biases and norm gains.")),
    Note("model.dropout", N_("Dropout"), N_(
        "Zeroes a random share of activations during training, so the model cannot rely on any one of them. "
        "Helps small corpora; 0 for short runs, 0.1–0.3 when the validation loss starts rising.")),
    Note("model.context_length", N_("Context length"), N_(
        "How many tokens the model sees at once. Attention costs grow with its square; the model can use "
        "nothing further back. Typical: 64–256 characters for small models.")),
    Note("train.grad_clip", N_("Gradient clipping"), N_(
        "If the gradient's overall norm exceeds this value it is scaled down to it, which stops a single bad "
        "batch from wrecking the weights. 1.0 is the usual choice.")),
    Note("tokenizer.kind", N_("Tokenizers"), N_(
        "Characters: tiny vocabulary, long sequences, nothing is unknown. Words: short sequences, but a large "
        "vocabulary and unknown words. BPE (byte-pair encoding) learns frequent pieces of words from the "
        "corpus: the usual compromise, and every text can be encoded.")),
    # ---- fine-tuning ----------------------------------------------------------------------
    Note("finetune.method", N_("Fine-tuning methods"), N_(
        "Full: every weight learns (best results, most memory). Freeze: the embeddings and the first layers "
        "stay fixed, so the general knowledge in them is kept. LoRA: the base stays fixed and small low-rank "
        "matrices learn a correction <i>W</i> + (α/<i>r</i>) <i>B</i><i>A</i>, a tiny fraction of the parameters.")),
    Note("finetune.lora_rank", N_("LoRA rank"), N_(
        "The width <i>r</i> of each adapter's bottleneck: each adapted layer learns <i>r</i>(<i>d</i><sub>in</sub> + "
        "<i>d</i><sub>out</sub>) numbers. 4–16 is typical; alpha sets the scale α/<i>r</i> of the correction.")),
]

NOTES: dict[str, Note] = {n.key: n for n in _NOTES}


def note_for(key: str) -> Note | None:
    """The note for a setting key (``train.lr``), an architecture (``arch.gpt``) or a topic."""
    return NOTES.get(key)


def note_for_setting(key: str, value: object = None) -> Note | None:
    """The note that explains a setting: its own (``train.lr``), or, for a choice whose values
    each have one, the note of the value chosen (``optimizer.name`` = adamw -> ``optimizer.adamw``)."""
    own = NOTES.get(key)
    if own is not None or value is None:
        return own
    return NOTES.get(f"{key.split('.')[0]}.{value}")


def has_notes(key: str, values: tuple[str, ...] = ()) -> bool:
    """Whether a setting (or, for a choice, any of its ``values``) has a note to link to."""
    return note_for_setting(key) is not None or any(note_for_setting(key, v) is not None for v in values)

"""Text generation: streamed sampling for any causal model, greedy and beam search for encoder-decoders.

Sampling draws from its own ``torch.Generator``, so generating a sample in the middle of training
never disturbs the training run's random state (and so never breaks exact resume).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from studio.core.data.special_tokens import BOS_ID, EOS_ID, NUM_SPECIAL, PAD_ID
from studio.core.data.tokenizers import Tokenizer
from studio.core.models.base import LanguageModel
from studio.core.models.gpt import GPT
from studio.core.models.recurrent import RecurrentLM
from studio.core.models.seq2seq import Seq2SeqTransformer
from studio.core.models.transformer_layers import KVCache


@dataclass(frozen=True)
class SamplingSettings:
    max_new_tokens: int = 200
    temperature: float = 0.8  # 0 means greedy
    top_k: int = 0  # 0 = no limit
    top_p: float = 1.0  # 1 = no nucleus cut
    stop_at_eos: bool = True
    seed: int | None = None

    def validate(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be 0 (greedy) or more")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0 or self.max_new_tokens < 0:
            raise ValueError("top_k and max_new_tokens must not be negative")


@dataclass(frozen=True)
class GeneratedToken:
    token_id: int
    text: str  # the new text this token completes (may be "" while a multi-byte character is pending)
    probability: float  # under the distribution it was drawn from


def filter_logits(logits: Tensor, top_k: int, top_p: float) -> Tensor:
    """Keep the k most likely tokens and the smallest set with cumulative probability >= p."""
    if top_k > 0 and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1, None]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative - sorted_logits.softmax(dim=-1) >= top_p  # keep the token that crosses p
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


@torch.no_grad()
def stream_tokens(
    model: LanguageModel, tokenizer: Tokenizer, prompt: str | list[int], settings: SamplingSettings = SamplingSettings()
) -> Iterator[GeneratedToken]:
    """Yield generated tokens one by one, with the text each adds. Stops at <eos> if asked.

    ``prompt`` is text, or ids already encoded (task templates encode their parts separately)."""
    settings.validate()
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    generator = torch.Generator(device="cpu")
    if settings.seed is not None:
        generator.manual_seed(settings.seed)
    else:
        generator.seed()
    try:
        # Documents in the training stream are separated by <eos>, so an empty prompt starts
        # after one: "the beginning of a document".
        if isinstance(prompt, list):
            prompt_ids = prompt or [EOS_ID]
        else:
            prompt_ids = (tokenizer.encode(prompt) if prompt else []) or [EOS_ID]
        logits, state = model.start_decoding(torch.tensor([prompt_ids], dtype=torch.long, device=device))
        produced: list[int] = []
        shown = ""
        for _ in range(settings.max_new_tokens):
            logits = _ban_specials(logits[0].float())  # never <pad>, <bos>, <mask>...; <eos> may end the text
            if settings.temperature == 0:
                token = int(logits.argmax())
                probability = float(logits.softmax(-1)[token])
            else:
                filtered = filter_logits(logits / settings.temperature, settings.top_k, settings.top_p)
                probs = filtered.softmax(-1).cpu()
                token = int(torch.multinomial(probs, 1, generator=generator))
                probability = float(probs[token])
            if token == EOS_ID and settings.stop_at_eos:
                return
            produced.append(token)
            text = tokenizer.decode(produced)
            # Byte-level BPE can split a character across tokens; hold text back until it is whole.
            delta = ""
            if not text.endswith("\ufffd"):
                delta, shown = text[len(shown) :], text
            yield GeneratedToken(token, delta, probability)
            logits, state = model.continue_decoding(torch.tensor([token], device=device), state)
    finally:
        model.train(was_training)


def generate_text(model: LanguageModel, tokenizer: Tokenizer, prompt: str | list[int], settings: SamplingSettings = SamplingSettings()) -> str:
    return "".join(t.text for t in stream_tokens(model, tokenizer, prompt, settings))


# ---- batched greedy decoding (scoring many examples at once) -----------------------------------


@torch.no_grad()
def batched_greedy(
    model: LanguageModel, prompts: list[list[int]], max_new_tokens: int, batch_size: int = 64, use_cache: bool = True
) -> list[list[int]]:
    """Greedy continuations of many prompts, a batch at a time; each stops at <eos>.

    Causal models get right-padded prompts and read the logits at each sequence's own last
    token, so padding never affects a prediction. Encoder-decoders read each prompt as the
    source and write from <bos>. Transformers keep a key-value cache and recurrent models carry
    their state, unless ``use_cache`` is False: then each step re-reads the last context_length
    tokens (kept to measure the difference and to test that within the context it changes
    nothing).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ctx = model.config.context_length
    out: list[list[int]] = []
    try:
        for i in range(0, len(prompts), batch_size):
            chunk = [p[-ctx:] or [EOS_ID] for p in prompts[i : i + batch_size]]
            if isinstance(model, Seq2SeqTransformer):
                out.extend(_greedy_seq2seq(model, chunk, max_new_tokens, device, use_cache))
            elif isinstance(model, GPT) and use_cache:
                out.extend(_greedy_gpt_cached(model, chunk, max_new_tokens, device))
            elif isinstance(model, RecurrentLM) and use_cache:
                out.extend(_greedy_recurrent(model, chunk, max_new_tokens, device))
            else:
                out.extend(_greedy_causal(model, chunk, max_new_tokens, device))
    finally:
        model.train(was_training)
    return out


def _ban_specials(logits: Tensor) -> Tensor:
    """Logits with every special token but <eos> made impossible."""
    allowed = torch.arange(logits.size(-1), device=logits.device)
    banned = (allowed < NUM_SPECIAL) & (allowed != EOS_ID)
    return logits.masked_fill(banned, float("-inf"))


def _greedy_causal(model: LanguageModel, prompts: list[list[int]], max_new: int, device: torch.device) -> list[list[int]]:
    ctx = model.config.context_length
    seqs = [list(p) for p in prompts]
    new: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    for _ in range(max_new):
        live = [k for k, d in enumerate(done) if not d]
        if not live:
            break
        windows = [seqs[k][-ctx:] for k in live]
        idx, _ = _right_padded(windows)
        logits = model(idx.to(device))
        if isinstance(logits, tuple):  # recurrent models also return their state
            logits = logits[0]
        last = torch.tensor([len(w) - 1 for w in windows], device=device)
        step = _ban_specials(logits[torch.arange(len(live), device=device), last].float())
        for row, token in zip(live, step.argmax(-1).tolist(), strict=True):
            if token == EOS_ID:
                done[row] = True
            else:
                seqs[row].append(token)
                new[row].append(token)
    return new


def _right_padded(seqs: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Sequences padded on the right into one [N, longest] tensor (on the CPU), and their lengths."""
    lengths = torch.tensor([len(s) for s in seqs])
    idx = torch.full((len(seqs), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, s in enumerate(seqs):
        idx[row, : len(s)] = torch.tensor(s)
    return idx, lengths


def _greedy_pick(logits: Tensor, rows: Tensor, new: list[list[int]]) -> tuple[Tensor, Tensor]:
    """The greedy token of each live batch row, added to its prompt's output unless it is <eos>;
    and the batch rows that go on."""
    tokens = _ban_specials(logits.float()).argmax(-1)
    for row, token in zip(rows.tolist(), tokens.tolist(), strict=True):
        if token != EOS_ID:
            new[row].append(token)
    return tokens, (tokens != EOS_ID).nonzero().flatten()


def _greedy_gpt_cached(model: GPT, prompts: list[list[int]], max_new: int, device: torch.device) -> list[list[int]]:
    """Greedy decoding with a key-value cache: the prompts are read once (right-padded, padding
    masked out of every later step), then each step feeds one token per unfinished row at that
    row's own position. Rows that reach the end of the context finish on the re-reading path."""
    ctx = model.config.context_length
    n = len(prompts)
    idx, lengths = _right_padded(prompts)
    lengths = lengths.to(device)
    key_mask = torch.arange(idx.size(1), device=device)[None, :] < lengths[:, None]
    cache = KVCache(len(model.blocks))
    hidden = model.hidden(idx.to(device), cache=cache, key_mask=key_mask)
    logits = model.head(hidden[torch.arange(n, device=device), lengths - 1])
    rows = torch.arange(n, device=device)  # which prompt each batch row is
    positions = lengths.clone()  # where each row's next token goes
    new: list[list[int]] = [[] for _ in prompts]
    for step in range(max_new):
        tokens, keep = _greedy_pick(logits, rows, new)
        if keep.numel() == 0 or step == max_new - 1:
            break
        if keep.numel() < rows.numel():
            cache.select(keep)
            rows, tokens, positions, key_mask = rows[keep], tokens[keep], positions[keep], key_mask[keep]
        if int(positions.max()) >= ctx:
            # Learned positions end at the context: continue these rows by re-reading windows.
            rest = [list(prompts[r]) + new[r] for r in rows.tolist()]
            for r, more in zip(rows.tolist(), _greedy_causal(model, rest, max_new - step - 1, device), strict=True):
                new[r].extend(more)
            break
        key_mask = torch.cat([key_mask, torch.ones_like(key_mask[:, :1])], dim=1)
        hidden = model.hidden(tokens[:, None], positions[:, None], cache, key_mask)
        logits = model.head(hidden[:, -1, :])
        positions = positions + 1
    return new


def _greedy_recurrent(model: RecurrentLM, prompts: list[list[int]], max_new: int, device: torch.device) -> list[list[int]]:
    """Greedy decoding that carries each row's recurrent state, as streaming does: the ragged
    prompts are read once as a packed batch (so each state stops at its own prompt's end),
    then each step feeds one token per unfinished row."""
    n = len(prompts)
    idx, lengths = _right_padded(prompts)
    packed = pack_padded_sequence(model.embed(idx.to(device)), lengths, batch_first=True, enforce_sorted=False)
    out, state = model.rnn(packed)
    hidden, _ = pad_packed_sequence(out, batch_first=True)
    logits = model.head(hidden[torch.arange(n, device=device), lengths.to(device) - 1])
    rows = torch.arange(n, device=device)
    new: list[list[int]] = [[] for _ in prompts]
    for step in range(max_new):
        tokens, keep = _greedy_pick(logits, rows, new)
        if keep.numel() == 0 or step == max_new - 1:
            break
        if keep.numel() < rows.numel():
            rows, tokens = rows[keep], tokens[keep]
            # The batch is dimension 1 of a recurrent state ([layers, B, hidden]; an LSTM has two).
            state = tuple(s.index_select(1, keep) for s in state) if isinstance(state, tuple) else state.index_select(1, keep)
        step_logits, state = model(tokens[:, None], state)
        logits = step_logits[:, -1, :]
    return new


def _greedy_seq2seq(
    model: Seq2SeqTransformer, prompts: list[list[int]], max_new: int, device: torch.device, use_cache: bool = True
) -> list[list[int]]:
    ctx = model.config.context_length
    src = _right_padded(prompts)[0].to(device)
    src_mask = src != PAD_ID
    memory = model.encode(src, src_mask)
    tgt = torch.full((len(prompts), 1), BOS_ID, dtype=torch.long, device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    cache = model.new_cache() if use_cache else None
    for _ in range(min(max_new, ctx - 1)):
        # With the cache only the newest target token goes in; finished rows stay in the batch
        # (writing <eos>) since encoder-decoder targets are short.
        step_in = tgt[:, -1:] if cache is not None else tgt
        step = _ban_specials(model.decode(step_in, memory, src_mask, cache)[:, -1, :].float()).argmax(-1)
        step = torch.where(done, torch.full_like(step, EOS_ID), step)
        tgt = torch.cat([tgt, step[:, None]], dim=1)
        done |= step == EOS_ID
        if bool(done.all()):
            break
    out = []
    for row in tgt[:, 1:].tolist():
        out.append(row[: row.index(EOS_ID)] if EOS_ID in row else row)
    return out


# ---- encoder-decoder search ------------------------------------------------------------------


@torch.no_grad()
def greedy_decode(model: Seq2SeqTransformer, src: list[int], max_len: int = 64) -> list[int]:
    return beam_search(model, src, beam_size=1, max_len=max_len)


@torch.no_grad()
def beam_search(
    model: Seq2SeqTransformer,
    src: list[int],
    beam_size: int = 4,
    max_len: int = 64,
    length_penalty: float = 1.0,
    use_cache: bool = True,
) -> list[int]:
    """The best target (without <bos>/<eos>) by beam search; scores are log-probabilities divided
    by length**length_penalty so longer hypotheses are not unfairly punished."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        ctx = model.config.context_length
        max_len = min(max_len, ctx - 1)
        src_t = torch.tensor([src[-ctx:] or [PAD_ID]], dtype=torch.long, device=device)
        src_mask = src_t != PAD_ID
        memory = model.encode(src_t, src_mask)
        beams: list[tuple[list[int], float]] = [([BOS_ID], 0.0)]
        finished: list[tuple[list[int], float]] = []
        cache = model.new_cache() if use_cache else None
        parents = torch.zeros(1, dtype=torch.long, device=device)
        for _ in range(max_len):
            n = len(beams)
            if cache is not None:
                # The cache follows the beams kept: row i continues the beam it came from.
                cache.select(parents)
                tgt = torch.tensor([b[-1:] for b, _ in beams], dtype=torch.long, device=device)
            else:
                tgt = torch.tensor([b for b, _ in beams], dtype=torch.long, device=device)
            logp = F.log_softmax(
                model.decode(tgt, memory.expand(n, -1, -1), src_mask.expand(n, -1), cache)[:, -1, :].float(), dim=-1
            )
            beams, origins = expand_beams(beams, logp, beam_size, finished)
            parents = torch.tensor(origins, dtype=torch.long, device=device)
            if not beams or (len(finished) >= beam_size and max(_norm(f, length_penalty) for f in finished) >= max(_norm(c, length_penalty) for c in beams)):
                break
        pool = finished or beams
        best = max(pool, key=lambda item: _norm(item, length_penalty))[0]
        return [t for t in best[1:] if t != EOS_ID]
    finally:
        model.train(was_training)


Beam = tuple[list[int], float]  # tokens so far, summed log-probability


def expand_beams(beams: list[Beam], logp: Tensor, beam_size: int, finished: list[Beam]) -> tuple[list[Beam], list[int]]:
    """One step of beam search: extend each beam by each token (log-probabilities ``logp``
    [beams, V]; special tokens other than <eos> are never written) and keep the ``beam_size``
    best. Hypotheses ending in <eos> go to ``finished``. Returns the kept beams and, for each,
    the index of the beam it extends (a key-value cache follows these)."""
    logp = _ban_specials(logp)
    scores = torch.tensor([s for _, s in beams], device=logp.device)[:, None] + logp
    top = torch.topk(scores.view(-1), min(2 * beam_size, scores.numel()))
    kept: list[Beam] = []
    origins: list[int] = []
    for score, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        b, token = divmod(flat, logp.size(1))
        seq = beams[b][0] + [token]
        if token == EOS_ID:
            finished.append((seq, score))
        else:
            kept.append((seq, score))
            origins.append(b)
        if len(kept) == beam_size:
            break
    return kept, origins


def _norm(item: tuple[list[int], float], alpha: float) -> float:
    seq, score = item
    return score / max(1, len(seq) - 1) ** alpha


# ---- masked-LM encoders ----------------------------------------------------------------------

MASK_MARK = "<mask>"


@torch.no_grad()
def fill_mask(model: LanguageModel, tokenizer: Tokenizer, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """For each ``<mask>`` in ``text``, the ``top_k`` most likely tokens with their probabilities."""
    from studio.core.data.special_tokens import MASK_ID
    from studio.core.models.bert import BERT

    if not isinstance(model, BERT):
        raise ValueError("filling in masks needs a BERT-style encoder")
    parts = text.split(MASK_MARK)
    if len(parts) < 2:
        raise ValueError(f"write {MASK_MARK} where the model should fill in a token")
    ids: list[int] = []
    for i, part in enumerate(parts):
        if part:
            ids.extend(tokenizer.encode(part))
        if i < len(parts) - 1:
            ids.append(MASK_ID)
    ids = ids[-model.config.context_length :]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        logits = model(torch.tensor([ids], device=device))[0].float()
    finally:
        model.train(was_training)
    out = []
    for pos in (i for i, t in enumerate(ids) if t == MASK_ID):
        probs = logits[pos].softmax(-1)
        probs[:NUM_SPECIAL] = 0
        top = torch.topk(probs, top_k)
        out.append([(tokenizer.id_to_token(int(i)), float(v)) for v, i in zip(top.values, top.indices, strict=True)])
    return out

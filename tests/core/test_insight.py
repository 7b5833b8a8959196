"""The Inspect engine (``studio.core.inference.insight``) against direct model calls and hand
computations: tiny untrained models, so each test runs in well under a second."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from studio.core.architectures import BERTConfig, GPTConfig, GRUConfig, LSTMConfig, RNNConfig, Seq2SeqConfig
from studio.core.data.special_tokens import MASK_ID, NUM_SPECIAL, PAD_ID
from studio.core.data.tokenizers.char import CharTokenizer
from studio.core.decoding.options import DecodingSettings
from studio.core.decoding.sampling import ban_specials, stream_tokens
from studio.core.inference import insight
from studio.core.inference.insight import (
    InsightError,
    ModelInsight,
    principal_components,
    recording_attention,
)
from studio.core.models.base import LanguageModel
from studio.core.models.bert import BERT
from studio.core.models.gpt import GPT
from studio.core.models.recurrent import RecurrentLM
from studio.core.models.registry import build_model
from studio.core.models.seq2seq import Seq2SeqTransformer
from studio.core.tasks.heads import ClassifierModel

TOKENIZER = CharTokenizer(list("abcdefgh "))
TEXT = "abc bad cafe"
CTX = 16


def tiny(arch: str, **extra: object) -> LanguageModel:
    configs = {
        "gpt": lambda: GPTConfig(n_layers=2, n_heads=2, d_model=16, context_length=CTX, positions="rotary", qk_norm=True),
        "gpt_learned": lambda: GPTConfig(n_layers=1, n_heads=2, d_model=16, context_length=CTX),
        "bert": lambda: BERTConfig(n_layers=2, n_heads=2, d_model=16, context_length=CTX),
        "seq2seq": lambda: Seq2SeqConfig(n_encoder_layers=1, n_decoder_layers=2, n_heads=2, d_model=16, context_length=CTX, qk_norm=True),
        "lstm": lambda: LSTMConfig(embedding_dim=8, hidden_size=8, num_layers=2, context_length=CTX),
        "gru": lambda: GRUConfig(embedding_dim=8, hidden_size=6, num_layers=2, tie_weights=False, context_length=CTX),
        "rnn": lambda: RNNConfig(embedding_dim=8, hidden_size=8, num_layers=2, context_length=CTX),
    }
    torch.manual_seed(0)
    model = build_model(configs[arch](), TOKENIZER.vocab_size)
    # Weights well away from their small init, so attention and gates are far from uniform and a
    # wrong mask, scale or gate order shows.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return model.eval()


def ids(tokens: list[int]) -> Tensor:
    return torch.tensor([tokens])


# ---- next-token probabilities ----------------------------------------------------------------


def direct_logits(model: LanguageModel, reading: insight.Reading) -> Tensor:
    """Logits [P, V] from a plain forward call of the model, as a person would write it."""
    with torch.no_grad():
        if isinstance(model, Seq2SeqTransformer):
            return model(ids([t.id for t in reading.source]), ids(reading.inputs))[0]
        if isinstance(model, BERT):
            rows = []
            for i in range(len(reading.inputs)):
                masked = list(reading.inputs)
                masked[i] = MASK_ID
                rows.append(model(ids(masked))[0, i])
            return torch.stack(rows)
        if isinstance(model, RecurrentLM):
            return model(ids(reading.inputs))[0][0]
        return model(ids(reading.inputs))[0]


@pytest.mark.parametrize("arch", ["gpt", "lstm", "seq2seq", "bert"])
def test_next_token_probabilities_sum_to_one_and_match_a_direct_forward_pass(arch: str) -> None:
    model = tiny(arch)
    view = ModelInsight(model, TOKENIZER)
    reading = view.read(TEXT)
    d = view.distributions(reading)
    expected = direct_logits(model, reading).softmax(-1)
    # One row per token, and for the models that write left to right one more: the next token.
    assert d.model.shape == (len(reading.tokens) + (arch != "bert"), TOKENIZER.vocab_size)
    torch.testing.assert_close(d.model.sum(-1), torch.ones(len(d.model)))
    torch.testing.assert_close(d.sampling.sum(-1), torch.ones(len(d.model)))
    torch.testing.assert_close(d.model, expected, atol=1e-5, rtol=1e-4)

    predictions = view.predictions(reading, top_k=4)
    for position in predictions.positions:
        row = expected[position.index]
        shown = [c.probability for c in position.candidates]
        assert shown == sorted(shown, reverse=True) and len(shown) == 4
        best = ban_specials(row.log()).softmax(-1)  # temperature 1, nothing cut: only the specials go
        assert [c.token_id for c in position.candidates] == torch.topk(best, 4).indices.tolist()
        if position.actual is not None:
            p = float(row[position.actual.token_id])
            assert position.actual.model_probability == pytest.approx(p, rel=1e-4)
            assert position.surprisal == pytest.approx(-math.log2(p), rel=1e-4)
    s = predictions.surprisal
    assert len(s.bits) == len(reading.tokens)
    assert s.bits_per_token == pytest.approx(sum(s.bits) / len(s.bits))
    assert s.bits_per_character == pytest.approx(sum(s.bits) / len(reading.text))
    assert s.most_surprising[0] == max(range(len(s.bits)), key=lambda i: s.bits[i])


def test_an_encoder_decoder_splits_a_text_into_source_and_target_or_takes_a_target() -> None:
    view = ModelInsight(tiny("seq2seq"), TOKENIZER)
    reading = view.read(TEXT)
    assert reading.source_text + reading.text == TEXT and [t.text for t in reading.source] == list(reading.source_text)
    assert len(reading.source) == (len(TEXT) + 1) // 2 and reading.input_labels[0] == "<bos>"
    given = view.read("abc", target="dead")
    assert given.source_text == "abc" and given.text == "dead" and given.inputs[1:] == TOKENIZER.encode("dead")
    assert view.predictions(given).surprisal.bits_per_character == pytest.approx(sum(view.predictions(given).surprisal.bits) / 4)


def test_with_temperature_and_top_p_the_probabilities_are_what_sampling_draws_from() -> None:
    model = tiny("gpt")
    view = ModelInsight(model, TOKENIZER)
    reading = view.read(TEXT)
    settings = DecodingSettings(mode="sample", temperature=0.7, top_p=0.6)
    d = view.distributions(reading, settings)
    # By hand: specials other than <eos> banned, logits / T, the smallest set whose mass reaches
    # p (the token that crosses it included), renormalized.
    logits = direct_logits(model, reading)
    banned = torch.zeros(logits.size(-1), dtype=torch.bool)
    banned[:NUM_SPECIAL] = True
    banned[3] = False  # <eos> may end a text
    tempered = (logits / 0.7).masked_fill(banned, float("-inf")).softmax(-1)
    for row, probs in enumerate(tempered):
        order = probs.argsort(descending=True)
        before = probs[order].cumsum(0) - probs[order]
        kept = order[before < 0.6]
        expected = torch.zeros_like(probs)
        expected[kept] = probs[kept] / probs[kept].sum()
        torch.testing.assert_close(d.sampling[row], expected, atol=1e-5, rtol=1e-4)
    assert (d.sampling > 0).sum(-1).min() < TOKENIZER.vocab_size - NUM_SPECIAL  # the cut really cut
    # And what stream_tokens really draws after the text comes from the last row, at its probability.
    for seed in range(1, 6):
        token = next(stream_tokens(model, TOKENIZER, reading.inputs, DecodingSettings("sample", 0.7, top_p=0.6, max_new_tokens=1, seed=seed)))
        assert d.sampling[-1, token.token_id] > 0
        assert token.probability == pytest.approx(float(d.sampling[-1, token.token_id]), rel=1e-4)
    greedy = view.distributions(reading, DecodingSettings(mode="sample", temperature=0.0))
    assert greedy.sampling.sum(-1).tolist() == [1.0] * len(greedy.sampling)
    assert greedy.sampling.argmax(-1).tolist() == tempered.argmax(-1).tolist()


# ---- attention -------------------------------------------------------------------------------


def capture(module: nn.Module) -> dict[str, object]:
    """The inputs and output of the next call of ``module`` (a hook that only looks)."""
    seen: dict[str, object] = {}

    def hook(_m: nn.Module, args: tuple[object, ...], kwargs: dict[str, object], out: object) -> None:
        seen["args"], seen["kwargs"], seen["out"] = args, kwargs, out

    module.register_forward_hook(hook, with_kwargs=True)
    return seen


def heads(z: Tensor, n: int) -> Tensor:
    b, t, c = z.shape
    return z.view(b, t, n, c // n).transpose(1, 2)


def output_from(weights: Tensor, v: Tensor, proj: nn.Module) -> Tensor:
    """What an attention module returns if ``weights`` [B, H, T, S] are the ones it attended with."""
    y = weights @ v
    b, h, t, hd = y.shape
    return proj(y.transpose(1, 2).reshape(b, t, h * hd))


def test_gpt_attention_with_rope_and_qk_norm_matches_a_recomputation_from_q_and_k() -> None:
    model = tiny("gpt")
    assert isinstance(model, GPT) and model.config.positions == "rotary" and model.config.qk_norm
    view = ModelInsight(model, TOKENIZER)
    reading = view.read(TEXT)
    attn = model.blocks[1].attn
    seen = capture(attn)
    maps = view.attention(reading)
    assert [(m.stack, m.kind, m.layer, m.causal) for m in maps] == [("decoder", "self", 0, True), ("decoder", "self", 1, True)]
    w = maps[1].weights
    t = len(reading.inputs)
    assert w.shape == (2, t, t) and maps[1].queries == maps[1].keys == reading.input_labels
    torch.testing.assert_close(w.sum(-1), torch.ones(2, t))
    assert float(w.triu(diagonal=1).abs().max()) == 0.0  # nothing from the future
    assert float(w.tril(diagonal=-1).max()) > 0.2  # and far from the identity: the past is really read
    # By hand, head 1: q and k from the layer's input, QK-norm, then RoPE, then scaled scores.
    x = seen["args"][0]  # type: ignore[index]
    with torch.no_grad():
        q, k, v = (heads(z, 2) for z in attn.qkv(x).split(16, dim=2))
        assert attn.q_norm is not None and attn.k_norm is not None and attn.rotary is not None
        q, k = attn.rotary(attn.q_norm(q)), attn.rotary(attn.k_norm(k))
        scores = (q[0, 1] @ k[0, 1].T) / math.sqrt(8)
        expected = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        torch.testing.assert_close(w[1], expected, atol=1e-5, rtol=1e-4)
        # The weights are the ones SDPA really used: with v they give the module's own output.
        torch.testing.assert_close(output_from(w[None], v, attn.proj), seen["out"], atol=1e-5, rtol=1e-4)


def test_recording_attention_leaves_the_model_as_it_was() -> None:
    model = tiny("gpt")
    x = ids(TOKENIZER.encode(TEXT))
    with torch.no_grad():
        before = model(x)
        modules = [b.attn for b in model.blocks]  # type: ignore[union-attr]
        with recording_attention(modules):  # type: ignore[arg-type]
            during = model(x)
        after = model(x)
    assert torch.equal(before, during) and torch.equal(before, after)  # the output never depends on it
    assert all(m.attention is None and not m.keep_attention for m in modules)  # type: ignore[union-attr]
    assert not any({"attention", "keep_attention"} & set(vars(m)) for m in modules)  # the class defaults again


def test_bert_attention_is_bidirectional_and_never_looks_at_padding() -> None:
    model = tiny("bert")
    assert isinstance(model, BERT)
    view = ModelInsight(model, TOKENIZER)
    single = view.attention(view.read(TEXT))
    assert all(m.stack == "encoder" and not m.causal for m in single)
    assert float(single[0].weights.triu(diagonal=1).max()) > 0.05  # it reads both ways
    # A batch with a padded row, through the hook directly: padding gets exactly no weight.
    a, b = TOKENIZER.encode(TEXT), TOKENIZER.encode("bad")
    batch = torch.tensor([a, b + [PAD_ID] * (len(a) - len(b))])
    mask = batch != PAD_ID
    attn = model.blocks[0].attn
    seen = capture(attn)
    with torch.no_grad(), recording_attention([attn]):
        model(batch, attention_mask=mask)
        w = attn.attention
        assert w is not None
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, len(a)))
        assert float(w[1, :, :, len(b):].abs().max()) == 0.0
        x = seen["args"][0]  # type: ignore[index]
        q, k, v = (heads(z, 2) for z in attn.qkv(x).split(16, dim=2))
        scores = (q[1, 0] @ k[1, 0].T) / math.sqrt(8)
        expected = scores.masked_fill(~mask[1][None, :], float("-inf")).softmax(-1)
        torch.testing.assert_close(w[1, 0], expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(output_from(w, v, attn.proj), seen["out"], atol=1e-5, rtol=1e-4)


def test_seq2seq_cross_attention_matches_a_recomputation_from_q_and_k() -> None:
    model = tiny("seq2seq")
    assert isinstance(model, Seq2SeqTransformer)
    view = ModelInsight(model, TOKENIZER)
    reading = view.read("abc bad", target="cafe")
    cross = model.decoder[1].cross
    assert cross is not None
    seen = capture(cross)
    maps = view.attention(reading)
    assert [(m.stack, m.kind, m.layer) for m in maps] == [
        ("encoder", "self", 0), ("decoder", "self", 0), ("decoder", "cross", 0), ("decoder", "self", 1), ("decoder", "cross", 1)]
    s, t = len(reading.source), len(reading.inputs)
    encoder, decoder_self, crossed = maps[0], maps[3], maps[4]
    assert encoder.weights.shape == (2, s, s) and encoder.queries == list("abc bad")
    assert float(decoder_self.weights.triu(diagonal=1).abs().max()) == 0.0  # the decoder writes left to right
    assert crossed.weights.shape == (2, t, s) and crossed.queries == ["<bos>", *"cafe"] and crossed.keys == list("abc bad")
    torch.testing.assert_close(crossed.weights.sum(-1), torch.ones(2, t))
    x, memory = seen["args"][0], seen["args"][1]  # type: ignore[index]
    with torch.no_grad():
        assert cross.q_norm is not None and cross.k_norm is not None
        q = cross.q_norm(heads(cross.q(x), 2))
        k, v = (heads(z, 2) for z in cross.kv(memory).split(16, dim=2))
        k = cross.k_norm(k)
        expected = ((q[0, 0] @ k[0, 0].T) / math.sqrt(8)).softmax(-1)
        torch.testing.assert_close(crossed.weights[0], expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(output_from(crossed.weights[None], v, cross.proj), seen["out"], atol=1e-5, rtol=1e-4)


# ---- recurrent states and gates --------------------------------------------------------------


def hand_steps(rnn: nn.RNNBase, layer: int, xs: Tensor, cell: str) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """One layer stepped by hand from its weights (PyTorch's equations for nn.LSTM and nn.GRU):
    each step's gates, the hidden states and the LSTM's cells."""
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
    b_ih, b_hh = getattr(rnn, f"bias_ih_l{layer}"), getattr(rnn, f"bias_hh_l{layer}")
    h = torch.zeros(rnn.hidden_size)
    c = torch.zeros(rnn.hidden_size)
    gates: dict[str, list[Tensor]] = {}
    hs, cs = [], []
    n_h = rnn.hidden_size
    for x in xs:
        if cell == "lstm":
            z = w_ih @ x + b_ih + w_hh @ h + b_hh
            i, f, g, o = z[:n_h].sigmoid(), z[n_h : 2 * n_h].sigmoid(), z[2 * n_h : 3 * n_h].tanh(), z[3 * n_h :].sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            step = {"input": i, "forget": f, "cell": g, "output": o}
        else:
            a, b = w_ih @ x + b_ih, w_hh @ h + b_hh
            r = (a[:n_h] + b[:n_h]).sigmoid()
            u = (a[n_h : 2 * n_h] + b[n_h : 2 * n_h]).sigmoid()
            n = (a[2 * n_h :] + r * b[2 * n_h :]).tanh()
            h = (1 - u) * n + u * h
            step = {"reset": r, "update": u, "new": n}
        for name, value in step.items():
            gates.setdefault(name, []).append(value)
        hs.append(h)
        cs.append(c)
    return {k: torch.stack(v) for k, v in gates.items()}, torch.stack(hs), torch.stack(cs)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gates_lie_in_zero_one_and_match_a_hand_computation_from_the_weights(cell: str) -> None:
    model = tiny(cell)
    assert isinstance(model, RecurrentLM)
    view = ModelInsight(model, TOKENIZER)
    reading = view.read(TEXT)
    states = view.recurrent(reading)
    assert states.cell == cell and len(states.layers) == 2 and states.labels == reading.input_labels
    with torch.no_grad():
        xs = model.embed(ids(reading.inputs))[0]
        top = model.rnn(xs[None])[0][0]
        for layer in states.layers:
            gates, hs, cs = hand_steps(model.rnn, layer.layer, xs, cell)
            assert set(layer.gates) == set(insight.GATE_NAMES[cell])
            for name, value in layer.gates.items():
                assert value.shape == (len(reading.inputs), model.rnn.hidden_size)
                if name not in ("cell", "new"):  # the candidates are tanh, in [-1, 1]
                    assert float(value.min()) >= 0.0 and float(value.max()) <= 1.0
                torch.testing.assert_close(value, gates[name], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(layer.hidden_norm, hs.norm(dim=-1), atol=1e-5, rtol=1e-4)
            if cell == "lstm":
                assert layer.cell_norm is not None
                torch.testing.assert_close(layer.cell_norm, cs.norm(dim=-1), atol=1e-5, rtol=1e-4)
            xs = hs
        torch.testing.assert_close(xs, top, atol=1e-5, rtol=1e-4)  # the hand steps are nn.LSTM/GRU's own


def test_an_rnn_shows_its_state_norms_and_no_gates() -> None:
    model = tiny("rnn")
    assert isinstance(model, RecurrentLM)
    view = ModelInsight(model, TOKENIZER)
    reading = view.read(TEXT)
    states = view.recurrent(reading)
    with torch.no_grad():
        top = model.rnn(model.embed(ids(reading.inputs)))[0][0]
    assert all(layer.gates == {} and layer.cell_norm is None for layer in states.layers)
    torch.testing.assert_close(states.layers[-1].hidden_norm, top.norm(dim=-1), atol=1e-5, rtol=1e-4)


# ---- embeddings ------------------------------------------------------------------------------


def test_pca_of_a_known_matrix_matches_an_svd_and_pca_lowrank() -> None:
    torch.manual_seed(1)
    basis = torch.linalg.qr(torch.randn(6, 6))[0]
    spread = torch.randn(40, 6) * torch.tensor([5.0, 2.0, 0.3, 0.2, 0.1, 0.05])
    matrix = spread @ basis.T + 3.0  # an offset, which PCA must remove
    pca = principal_components(matrix, 2)
    centred = matrix - matrix.mean(0)
    u, s, _vh = torch.linalg.svd(centred, full_matrices=False)
    by_svd = u[:, :2] * s[:2]
    signs = torch.sign((pca.coords * by_svd).sum(0))
    torch.testing.assert_close(pca.coords, by_svd * signs, atol=1e-4, rtol=1e-4)
    u2, s2, _v2 = torch.pca_lowrank(matrix, q=2, center=True, niter=6)
    by_lowrank = u2 * s2
    torch.testing.assert_close(pca.coords.abs(), by_lowrank.abs(), atol=1e-3, rtol=1e-3)
    # The axes are the basis's first two directions (up to sign), and they explain what they should.
    torch.testing.assert_close((pca.axes @ basis[:, :2]).abs(), torch.eye(2), atol=0.05, rtol=0.05)
    torch.testing.assert_close(pca.explained, s[:2].square() / s.square().sum())
    assert float(pca.explained.sum()) > 0.95
    # The sign convention: the largest loading of each axis is positive, so a map never flips.
    assert all(float(axis[axis.abs().argmax()]) > 0 for axis in pca.axes)


def test_the_embedding_map_is_the_pca_of_the_embedding_table_and_can_be_aligned() -> None:
    model = tiny("gpt_learned")
    assert isinstance(model, GPT)
    view = ModelInsight(model, TOKENIZER)
    m = view.embedding_map()
    torch.testing.assert_close(m.coords, principal_components(model.tok_emb.weight).coords)
    assert m.coords.shape == (TOKENIZER.vocab_size, 2) and m.labels[3] == "<eos>" and m.labels[7] == "a"
    assert 0 < m.explained[1] <= m.explained[0] < 1
    flipped = view.embedding_map(align_to=-m.coords)
    torch.testing.assert_close(flipped.coords, -m.coords)


def test_nearest_neighbours_of_a_token_include_itself_first() -> None:
    model = tiny("lstm")
    assert isinstance(model, RecurrentLM)
    view = ModelInsight(model, TOKENIZER)
    a, b, c = TOKENIZER.encode("abc")
    with torch.no_grad():
        model.embed.weight[c] = 3.0 * model.embed.weight[a] + 0.01 * torch.randn(8)  # c points almost where a does
    for token in range(NUM_SPECIAL, TOKENIZER.vocab_size):
        found = view.neighbours(token, 3)
        assert found[0].token_id == token and found[0].similarity == pytest.approx(1.0, abs=1e-5)
        assert [n.similarity for n in found] == sorted((n.similarity for n in found), reverse=True)
    near_a = view.neighbours(a, 2)
    assert near_a[1].token_id == c and near_a[1].text == "c" and near_a[1].similarity > 0.99
    cosines = F.cosine_similarity(model.embed.weight[b][None], model.embed.weight, dim=1)
    assert [n.token_id for n in view.neighbours(b, 4)] == cosines.topk(4).indices.tolist()
    assert [t for t, _ in view.find_tokens("A")] == [a, 0, 6]  # exact first; the specials (<pad>, <mask>) last
    with pytest.raises(InsightError, match="no token 99"):
        view.neighbours(99)


# ---- bounds and what each model can show -----------------------------------------------------


def test_texts_longer_than_the_context_are_refused_with_a_message() -> None:
    gpt = ModelInsight(tiny("gpt"), TOKENIZER)
    assert len(gpt.read("a" * (CTX - 1)).inputs) == CTX  # the start token and CTX - 1 tokens fit
    with pytest.raises(InsightError, match=r"has 16 tokens, and this model reads at most 15 .*start token <eos>"):
        gpt.read("a" * CTX)
    bert = ModelInsight(tiny("bert"), TOKENIZER)
    assert len(bert.read("a" * CTX).inputs) == CTX
    with pytest.raises(InsightError, match="has 17 tokens"):
        bert.read("a" * (CTX + 1))
    with pytest.raises(InsightError, match="characters"):
        gpt.read("a" * (insight.MAX_TEXT_CHARACTERS + 1))
    with pytest.raises(InsightError, match="Type a text"):
        gpt.read("  ")


def test_attention_too_large_to_hold_is_refused_before_it_is_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    view = ModelInsight(tiny("gpt"), TOKENIZER)
    reading = view.read(TEXT)
    t = len(reading.inputs)
    monkeypatch.setattr(insight, "MAX_ATTENTION_VALUES", 2 * 2 * t * t - 1)  # one value short of two layers of two heads
    with pytest.raises(InsightError, match="shorter text"):
        view.attention(reading)
    monkeypatch.setattr(insight, "MAX_ATTENTION_VALUES", 2 * 2 * t * t)
    assert len(view.attention(reading)) == 2


def test_each_model_offers_only_the_views_it_has() -> None:
    lstm, gpt = ModelInsight(tiny("lstm"), TOKENIZER), ModelInsight(tiny("gpt"), TOKENIZER)
    assert lstm.views == ["tokens", "predictions", "recurrent", "embeddings"]
    assert gpt.views == ["tokens", "predictions", "attention", "embeddings"]
    with pytest.raises(InsightError, match="recurrent model"):
        lstm.attention(lstm.read(TEXT))
    with pytest.raises(InsightError, match="Transformer"):
        gpt.recurrent(gpt.read(TEXT))


def test_a_task_model_shows_its_body_but_not_token_predictions() -> None:
    body = tiny("gpt")
    classifier = ClassifierModel(body, num_labels=3).eval()
    view = ModelInsight(classifier, TOKENIZER)
    assert view.lm is body and "predictions" not in view.views and "attention" in view.views
    reading = view.read(TEXT)
    with pytest.raises(InsightError, match="task head"):
        view.predictions(reading)
    mine = view.attention(reading)
    plain = ModelInsight(body, TOKENIZER).attention(reading)
    assert all(torch.equal(a.weights, b.weights) for a, b in zip(mine, plain, strict=True))

"""``studio inspect-model``: the top-k table and the surprisal summary of a really trained tiny
run, checked against the engine (``ModelInsight``) and for its refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studio.cli.main import main
from studio.core.decoding.options import DecodingSettings
from studio.core.inference.insight import ModelInsight
from tests.cli.test_cli import TINY, only_run

ROW = re.compile(r"^\s*(\d+)  (.+?)\s+(?:(\d+\.\d\d) bits)?\s+\| (.*)$")
CANDIDATE = re.compile(r"('(?:[^'\\]|\\.)*'|\"[^\"]*\") (\d+\.\d)%")


def train(tmp_path: Path, corpus: Path, preset: str, *extra: str) -> Path:
    assert main(["train", preset, *extra, "--set", "train.steps=4", "--set", f'data.paths=["{corpus}"]',
                 "--out", str(tmp_path), "--quiet"]) == 0
    return only_run(tmp_path)


def rows(out: str) -> list[tuple[int, str, float | None, list[tuple[str, float]]]]:
    found = []
    for line in out.splitlines():
        m = ROW.match(line)
        if m:
            candidates = [(text, float(p)) for text, p in CANDIDATE.findall(m.group(4))]
            found.append((int(m.group(1)), m.group(2), float(m.group(3)) if m.group(3) else None, candidates))
    return found


def test_inspect_model_prints_the_top_k_table_and_the_surprisal_summary(tmp_path: Path, tiny_corpus: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    run = train(tmp_path, tiny_corpus, "demo-gpt", *TINY)
    text = "The cat sat."
    capsys.readouterr()
    assert main(["inspect-model", str(run), "--text", text, "--top-k", "3", "--checkpoint", "last"]) == 0
    captured = capsys.readouterr()
    assert "step 4" in captured.err  # which checkpoint was read
    table = rows(captured.out)
    # A character model: one row per character, then the row for the character after the text.
    assert [r[0] for r in table] == list(range(1, len(text) + 2))
    assert [r[1] for r in table] == [repr(ch) for ch in text] + ["(next)"]
    expected = ModelInsight.load(run, "last").predictions(ModelInsight.load(run, "last").read(text), top_k=3)
    for (_i, _name, bits, candidates), position in zip(table, expected.positions, strict=True):
        assert [p for _t, p in candidates] == [round(c.probability * 100, 1) for c in position.candidates]
        assert [t for t, _p in candidates] == [repr(c.text) for c in position.candidates]
        assert len(candidates) == 3 and [p for _t, p in candidates] == sorted((p for _t, p in candidates), reverse=True)
        assert bits == (None if position.surprisal is None else round(position.surprisal, 2))
    s = expected.surprisal
    summary = [line for line in captured.out.splitlines() if line.startswith("mean surprisal")]
    assert summary == [f"mean surprisal: {s.bits_per_token:.3f} bits per token, {s.bits_per_character:.3f} bits per character "
                       f"({len(text)} tokens, {len(text)} characters)"]
    worst = max(range(len(text)), key=lambda i: s.bits[i])
    assert f"most surprising: {text[worst]!r} at {worst + 1} ({s.bits[worst]:.2f} bits)" in captured.out
    assert "temperature 1, top-p 1" in captured.out

    # Greedy: every row holds the one token greedy decoding would take, at 100%.
    assert main(["inspect-model", str(run), "--text", text, "--temperature", "0"]) == 0
    greedy = rows(capsys.readouterr().out)
    assert len(greedy) == len(text) + 1 and all(len(c) == 1 and c[0][1] == 100.0 for *_rest, c in greedy)
    # A top-p cut: the shown candidates are what sampling would draw, so together at most 100%,
    # and they match the engine under the same settings.
    assert main(["inspect-model", str(run), "--text", text, "--top-p", "0.3", "--temperature", "0.5", "--top-k", "50"]) == 0
    nucleus = rows(capsys.readouterr().out)
    cut = ModelInsight.load(run).predictions(ModelInsight.load(run).read(text), DecodingSettings("sample", 0.5, top_p=0.3), 50)
    assert [len(c) for *_rest, c in nucleus] == [len(p.candidates) for p in cut.positions]
    assert all(99.0 <= sum(p for _t, p in c) <= 100.5 for *_rest, c in nucleus)
    assert max(len(c) for *_rest, c in nucleus) < 50


def test_inspect_model_refuses_what_it_cannot_read_in_one_paragraph(tmp_path: Path, tiny_corpus: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = train(tmp_path, tiny_corpus, "demo-gpt", *TINY)  # a context of 32 tokens
    capsys.readouterr()
    assert main(["inspect-model", str(run), "--text", "x" * 40]) == 1
    err = capsys.readouterr().err
    assert "studio: The text has 40 tokens, and this model reads at most 31 at once" in err and "Traceback" not in err
    assert main(["inspect-model", str(run), "--text", "The cat", "--top-p", "2"]) == 2
    assert "studio: top_p must be in (0, 1]" in capsys.readouterr().err
    assert main(["inspect-model", str(run), "--text", "The cat", "--top-k", "0"]) == 2
    assert "--top-k must be between 1 and 100" in capsys.readouterr().err


@pytest.mark.parametrize(("preset", "extra", "header"), [
    ("demo-bert", TINY, "each token's candidates with that token masked out"),
    ("demo-seq2seq", ["--set", "model.n_encoder_layers=1", "--set", "model.n_decoder_layers=1", "--set", "model.d_model=32",
                      "--set", "model.n_heads=2", "--set", "model.context_length=32", "--set", "train.batch_size=8",
                      "--set", "train.eval_interval=10", "--set", "train.eval_batches=2", "--set", "train.sample_tokens=8"],
     "source: 'The cat '"),
])
def test_inspect_model_reads_an_encoder_and_an_encoder_decoder(preset: str, extra: list[str], header: str, tmp_path: Path,
                                                               tiny_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = train(tmp_path, tiny_corpus, preset, *extra)
    text = "The cat sat down"
    capsys.readouterr()
    assert main(["inspect-model", str(run), "--text", text, "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert header in out
    view = ModelInsight.load(run)
    expected = view.predictions(view.read(text), top_k=2)
    table = rows(out)
    # BERT: a row per token (each predicted with itself masked). Encoder-decoder: a row per
    # target token (the text's second half) and one for the token after it.
    assert len(table) == len(expected.positions) == (len(text) if preset == "demo-bert" else len(text) // 2 + 1)
    assert [bits for _i, _n, bits, _c in table] == [None if p.surprisal is None else round(p.surprisal, 2) for p in expected.positions]
    assert f"mean surprisal: {expected.surprisal.bits_per_token:.3f} bits per token" in out

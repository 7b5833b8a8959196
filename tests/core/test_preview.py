"""The corpus preview's choices made before a build: which column holds the text, and what
``format = "auto"`` resolves to."""

from __future__ import annotations

import json
from pathlib import Path

from studio.core.data.preview import builtin_corpora, choose_text_column, effective_format, preview_corpus


def test_the_longest_mostly_textual_column_is_chosen() -> None:
    samples = {"id": [str(i) for i in range(50)], "review": [f"a thoughtful review, number {i}" for i in range(50)],
               "stars": ["5", "4", "3"] * 16 + ["", "2"], "date": ["2024-01-01"] * 50}
    name, why = choose_text_column(samples)
    assert name == "review"
    assert why.startswith("review: the longest text,") and "characters on average" in why


def test_a_column_set_before_is_kept_when_it_is_text() -> None:
    samples = {"title": ["short title"] * 10, "body": ["a much longer body of text, sentence after sentence"] * 10}
    assert choose_text_column(samples, preferred="title")[0] == "title"
    assert "kept as chosen" in choose_text_column(samples, preferred="title")[1]
    assert choose_text_column(samples, preferred="text")[0] == "body"  # the default name is not there
    assert choose_text_column({"n": ["1", "2"], "m": ["3", ""]})[0] == "n"  # nothing is text: the first


def test_numbers_with_thousands_separators_are_numbers() -> None:
    samples = {"amount": ["1,200", "3,400.5", "12"] * 5, "label": ["ok", "no", "ok"] * 5}
    assert choose_text_column(samples)[0] == "label"


def test_preview_suggests_the_text_column_of_a_csv_and_a_jsonl(tmp_path: Path) -> None:
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text("id,review,stars\n" + "".join(f'{i},"a fine review, number {i}",{i % 5}\n' for i in range(60)))
    preview = preview_corpus([str(csv_path)])
    assert preview.columns == ["id", "review", "stars"]
    assert preview.text_column == "review" and "review: the longest text" in preview.text_column_reason
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("".join(json.dumps({"id": str(i), "title": f"t{i}", "body": f"the body of document {i}"}) + "\n" for i in range(9)))
    assert preview_corpus([str(jsonl)]).text_column == "body"


def test_auto_format_resolves_like_the_reader(tmp_path: Path) -> None:
    assert effective_format(["a.CSV"]) == "csv"
    assert effective_format(["a.jsonl"], "auto", "demo") == "jsonl"
    assert effective_format([str(tmp_path)]) == "text"  # a folder
    assert effective_format([], "auto", "imdb") == "jsonl"
    assert effective_format([], "auto", "demo") == "text"
    assert effective_format(["a.csv"], "tsv") == "tsv"
    names = [name for name, _ in builtin_corpora()]
    assert names[:2] == ["demo", "demo-zh"] and "tinyshakespeare" in names

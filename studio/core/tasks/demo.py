"""Small synthetic task datasets that Studio writes itself, so fine-tuning works on a fresh machine.

- ``demo-translate``: English-like sentences into "Lingo", a rule-based mini-language with its
  own words, adjectives after nouns, articles after the noun phrase and the verb last (SOV).
- ``demo-qa``: two generated facts, with a question whose answer is a span of them.
- ``demo-summarize``: generated local news items and their one-line headlines.
- ``demo-sentiment``: templated movie reviews, positive or negative.

Every generator is seeded, so the same version of Studio writes the same files.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from studio.core.errors import DataError
from studio.core.fileio import atomic_write_text
from studio.core.i18n import _
from studio.core.paths import datasets_dir
from studio.core.tasks.examples import load_examples

# ---- translation --------------------------------------------------------------------------------

NOUNS = {"fox": "vulpo", "bird": "avi", "cat": "kato", "dog": "hundo", "horse": "ekvo", "fish": "fiso",
         "child": "ido", "farmer": "farmo", "teacher": "docho", "baker": "pano"}
ADJECTIVES = {"red": "ruga", "small": "eta", "big": "granda", "old": "olda", "happy": "gaja", "quiet": "kvieta"}
VERBS = {"sees": "vidas", "likes": "satas", "follows": "sekvas", "finds": "trovas", "helps": "helpas", "calls": "vokas"}
ARTICLES = {"the": "la", "a": "un"}


def _noun_phrase(rng: random.Random) -> tuple[str, str]:
    art = rng.choice(list(ARTICLES))
    noun = rng.choice(list(NOUNS))
    if rng.random() < 0.6:
        adj = rng.choice(list(ADJECTIVES))
        return f"{art} {adj} {noun}", f"{NOUNS[noun]} {ADJECTIVES[adj]} {ARTICLES[art]}"
    return f"{art} {noun}", f"{NOUNS[noun]} {ARTICLES[art]}"


def translation_example(rng: random.Random) -> dict[str, str]:
    subj_en, subj_li = _noun_phrase(rng)
    obj_en, obj_li = _noun_phrase(rng)
    verb = rng.choice(list(VERBS))
    return {"source": f"{subj_en} {verb} {obj_en}", "target": f"{subj_li} {obj_li} {VERBS[verb]}"}


# ---- question answering -------------------------------------------------------------------------

PEOPLE = ["Mira", "Tomas", "Lena", "Oskar", "Ada", "Felix", "Nora", "Ivo", "Sana", "Pavel", "Rosa", "Emil"]
TOWNS = ["Harbour Town", "Pine Hill", "Riverton", "Stonebridge", "Oakfield", "Westmere", "Millbrook", "Ashford"]
JOBS = ["baker", "teacher", "sailor", "doctor", "painter", "farmer", "carpenter", "librarian"]
PETS = ["a grey cat", "a small dog", "two goldfish", "a parrot", "an old horse", "a tortoise"]
COLOURS = ["green", "blue", "yellow", "red", "purple", "orange"]


# Demo examples are short enough that a character model with a 128-token context (the demo-gpt
# preset) sees the whole input: its prompt gets the half of the context the answer does not need.

FACTS = {
    "town": (TOWNS, "{p} lives in {x}.", "Where does {p} live?"),
    "job": (JOBS, "{p} is a {x}.", "What is {p}'s job?"),
    "pet": (PETS, "{p} has {x}.", "What pet has {p}?"),
    "colour": (COLOURS, "{p} likes {x}.", "Which colour does {p} like?"),
}


def qa_example(rng: random.Random) -> dict[str, object]:
    """Two people, one fact each; half the time the same kind of fact, so the name decides."""
    people = rng.sample(PEOPLE, 2)
    first = rng.choice(list(FACTS))
    kinds = [first, first if rng.random() < 0.5 else rng.choice(list(FACTS))]
    values = [rng.choice(FACTS[k][0]) for k in kinds]
    sentences = [FACTS[k][1].format(p=p, x=x) for p, k, x in zip(people, kinds, values, strict=True)]
    context = " ".join(sentences)
    i = rng.randrange(2)
    answer = values[i]
    start = context.index(sentences[i]) + sentences[i].index(answer)
    return {"context": context, "question": FACTS[kinds[i]][2].format(p=people[i]), "answer": answer, "answer_start": start}


# ---- summarization ------------------------------------------------------------------------------

BODIES = ["council", "school board", "football club", "library board", "port authority"]
TOPICS = ["new bridge", "summer fair", "bus route", "park works", "night market", "bike lanes"]
DECISIONS = {"approves": "approved", "rejects": "turned down", "delays": "put off"}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def summary_example(rng: random.Random) -> dict[str, str]:
    """A news item whose first sentence carries the news, as news items do; the headline
    restates it in headline style (present tense, no article)."""
    town, body, topic = rng.choice(TOWNS), rng.choice(BODIES), rng.choice(TOPICS)
    verb = rng.choice(list(DECISIONS))
    votes_for = rng.randint(3, 12)
    document = (
        f"{town} {body} {DECISIONS[verb]} the {topic}. "
        f"The members met on {rng.choice(DAYS)} after residents asked about the cost and the timetable; "
        f"{votes_for} were in favour. A spokesperson said the decision would be explained at the next public meeting."
    )
    return {"document": document, "summary": f"{town} {body} {verb} {topic}"}


# ---- sentiment ----------------------------------------------------------------------------------

GOOD = ["wonderful", "moving", "brilliant", "charming", "gripping", "delightful", "beautiful"]
BAD = ["boring", "clumsy", "dull", "tedious", "predictable", "messy", "lifeless"]
SUBJECTS = ["The film", "The story", "The acting", "The soundtrack", "The ending", "The script"]
CLOSERS_GOOD = ["I would watch it again.", "I left the cinema smiling.", "Highly recommended."]
CLOSERS_BAD = ["I nearly walked out.", "I would not recommend it.", "What a waste of an evening."]


def sentiment_example(rng: random.Random) -> dict[str, str]:
    positive = rng.random() < 0.5
    words = GOOD if positive else BAD
    a, b = rng.sample(SUBJECTS, 2)
    text = f"{a} was {rng.choice(words)} and {b.lower()} was {rng.choice(words)}. {rng.choice(CLOSERS_GOOD if positive else CLOSERS_BAD)}"
    return {"text": text, "label": "positive" if positive else "negative"}


DEMO_TASKS: dict[str, tuple[str, Callable[[random.Random], dict[str, object]]]] = {
    "demo-translate": ("translate", translation_example),  # type: ignore[dict-item]
    "demo-qa": ("qa", qa_example),
    "demo-summarize": ("summarize", summary_example),  # type: ignore[dict-item]
    "demo-sentiment": ("classify", sentiment_example),  # type: ignore[dict-item]
}
SIZES = {"train": 3000, "valid": 300, "test": 300}
# Raised whenever a generator changes, so files written by an older Studio are never reused.
DEMO_TASKS_VERSION = 2


def write_demo_task(name: str, folder: Path | None = None, sizes: dict[str, int] | None = None, seed: int = 11) -> dict[str, Path]:
    """Write train/valid/test JSONL for a demo task (split by seed, no example shared); returns the paths."""
    kind, make = DEMO_TASKS[name]
    folder = folder or demo_task_folder(name)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = sizes or SIZES
    rng = random.Random(seed)
    seen: set[str] = set()
    paths = {}
    for split, count in sizes.items():
        rows: list[dict[str, object]] = []
        while len(rows) < count:
            row = make(rng)
            key = json.dumps(row, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            rows.append(row)
        path = folder / f"{split}.jsonl"
        # A temporary file of its own: two writers at once (the Fine-tune page's preview and a
        # search's first trial) shared "train.tmp", and the second rename found it gone.
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), durable=False)
        paths[split] = path
    return paths


def demo_task_folder(name: str) -> Path:
    return datasets_dir() / name / f"v{DEMO_TASKS_VERSION}"


def demo_task_paths(name: str) -> dict[str, Path]:
    """The demo task's files in the user data folder, written on first use."""
    if name not in DEMO_TASKS:
        # Translators: {names} lists the demo tasks' names, kept as is.
        raise DataError(_("unknown demo task {name} (built in: {names})").format(name=repr(name), names=", ".join(DEMO_TASKS)))
    folder = demo_task_folder(name)
    paths = {split: folder / f"{split}.jsonl" for split in SIZES}
    if not all(p.exists() for p in paths.values()):
        paths = write_demo_task(name, folder)
    return paths


def write_task_corpus(name: str, path: Path) -> Path:
    """The demo task's training text as a plain corpus (inputs and outputs, one per line), for
    pre-training a small base whose vocabulary covers the task."""
    kind, _ = DEMO_TASKS[name]
    return write_examples_corpus(kind, [demo_task_paths(name)["train"]], path)


def write_examples_corpus(kind: str, example_paths: list[Path], path: Path, fmt: str = "auto", fields: list[str] | None = None) -> Path:
    """Any task's examples as a plain-text corpus: every question, input and output on its own line."""
    examples = load_examples(kind, example_paths, fmt, fields)
    lines = [" ".join(t.split()) for e in examples for t in (e.question, e.source, e.target if kind != "classify" else "") if t.strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(dict.fromkeys(lines)) + "\n", encoding="utf-8")
    return path

"""Demo corpora that Studio writes itself, so a fresh machine can train with no download.

The text comes from small seeded grammars: short stories about animals, places and weather in
English, and a matching set in Chinese. They hold enough regularity (agreement, recurring
characters, dialogue punctuation) for a tiny model to learn visibly within a few hundred steps,
and no third-party text.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

from studio.core.fileio import FILE_MODE
from studio.core.paths import datasets_dir

_NAMES = ["Mira", "Tomas", "Lena", "Oskar", "Ada", "Felix", "Nora", "Ivo", "Sana", "Pavel", "Rosa", "Emil"]
_ANIMALS = ["fox", "heron", "otter", "badger", "owl", "hare", "wren", "beaver", "deer", "crow", "mole", "lynx"]
_PLACES = [
    "the river", "the old mill", "the pine forest", "the harbour", "the hill", "the market",
    "the meadow", "the library", "the lighthouse", "the orchard", "the bridge", "the garden",
]
_WEATHER = ["rain", "snow", "fog", "wind", "sunshine", "thunder"]
_ADJ = ["small", "quiet", "clever", "tired", "brave", "curious", "old", "young", "hungry", "cheerful", "lazy", "jolly", "quick"]
_VERBS_PAST = ["walked", "ran", "wandered", "hurried", "climbed", "sailed", "cycled", "drove", "jogged", "zigzagged"]
_OBJECTS = ["a red apple", "an old map", "a silver key", "a wooden boat", "a blue kite", "a warm loaf", "a letter", "a lantern"]
_FEELINGS = ["happy", "worried", "surprised", "calm", "proud", "sleepy", "excited"]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def english_story(rng: random.Random) -> str:
    name = rng.choice(_NAMES)
    animal = rng.choice(_ANIMALS)
    adj = rng.choice(_ADJ)
    place, other = rng.sample(_PLACES, 2)
    obj = rng.choice(_OBJECTS)
    weather = rng.choice(_WEATHER)
    feeling = rng.choice(_FEELINGS)
    lines = [
        f"One morning {name} {rng.choice(_VERBS_PAST)} to {place}.",
        f"There was {weather} over {place}, and the air smelled of {rng.choice(['salt', 'pine', 'bread', 'grass', 'smoke'])}.",
        f"By the path sat {_article(adj)} {adj} {animal}.",
        f'"Good morning," said {name}. "Have you seen {obj}?"',
        f'"I have," said the {animal}. "It is near {other}."',
        f"So {name} and the {animal} went to {other} together.",
    ]
    if rng.random() < 0.5:
        lines.append(f"On the way they counted {rng.randint(2, 12)} {rng.choice(['birds', 'boats', 'stones', 'trees', 'clouds'])}.")
    lines.append(f"At {other} they found {obj}, and {name} felt {feeling}.")
    lines.append(f"Then the {animal} went home, and {name} went home too.")
    return "\n".join(lines) + "\n"


_ZH_NAMES = ["小明", "小红", "老王", "阿梅", "李雷", "韩梅", "张伟", "王芳"]
_ZH_ANIMALS = ["狐狸", "白鹭", "水獭", "猫头鹰", "兔子", "小鹿", "乌鸦", "松鼠"]
_ZH_PLACES = ["河边", "老磨坊", "松树林", "港口", "山坡上", "集市", "草地", "图书馆", "灯塔", "果园"]
_ZH_WEATHER = ["下雨", "下雪", "起雾", "刮风", "晴天", "打雷"]
_ZH_OBJECTS = ["一个红苹果", "一张旧地图", "一把银钥匙", "一只小木船", "一只蓝风筝", "一封信", "一盏灯笼"]
_ZH_FEELINGS = ["很高兴", "有点担心", "很惊讶", "很平静", "很自豪", "很困", "很兴奋"]


def chinese_story(rng: random.Random) -> str:
    name = rng.choice(_ZH_NAMES)
    animal = rng.choice(_ZH_ANIMALS)
    place, other = rng.sample(_ZH_PLACES, 2)
    obj = rng.choice(_ZH_OBJECTS)
    lines = [
        f"一天早上，{name}去了{place}。",
        f"那天{rng.choice(_ZH_WEATHER)}，{place}很安静。",
        f"路边坐着一只{animal}。",
        f"“早上好，”{name}说，“你看见{obj}了吗？”",
        f"“看见了，”{animal}说，“就在{other}。”",
        f"于是{name}和{animal}一起去了{other}。",
        f"在{other}，他们找到了{obj}，{name}{rng.choice(_ZH_FEELINGS)}。",
        f"后来{animal}回家了，{name}也回家了。",
    ]
    return "\n".join(lines) + "\n"


DEMO_CORPORA = {"demo": english_story, "demo-zh": chinese_story}
# Bumped whenever a generator changes, so an existing user's file is not silently reused.
DEMO_VERSION = 2


def write_demo_corpus(path: Path, kind: str = "demo", stories: int = 1500, seed: int = 7) -> Path:
    """Write ``stories`` seeded stories (blank line between them) to ``path``; same seed, same bytes."""
    rng = random.Random(seed)
    make = DEMO_CORPORA[kind]
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary name of its own (see write_demo_task): two writers at once must not share one.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for i in range(stories):
                if i:
                    f.write("\n")
                f.write(make(rng))
        os.chmod(tmp, FILE_MODE)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def demo_corpus_path(kind: str = "demo") -> Path:
    """The demo corpus in the user's data folder, written on first use."""
    path = datasets_dir() / kind / f"{kind}-v{DEMO_VERSION}.txt"
    if not path.exists():
        write_demo_corpus(path, kind)
    return path

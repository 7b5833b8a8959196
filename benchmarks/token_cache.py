"""How fast is the token cache built, does it keep memory flat, and is the second run instant?

    python benchmarks/token_cache.py [--sizes-mb 50] [--tokenizers char,bpe] [--repeats 3]
                                     [--corpus stories|varied] [--reference]

For each size, a corpus of that many MB is written: Studio's demo stories (``stories``; the same
sentences recur, so many lines repeat) or lines of words drawn from a large made-up vocabulary
(``varied``; almost no line repeats, like real prose). Then, ``--repeats`` times, a fresh process
prepares it into an empty cache (scan, train the tokenizer, encode), draws 500 training batches
from the memory map, and reports the time and its peak memory; the MB/s printed is the corpus
size over the whole preparation, as the median of the repeats with their spread (min-max). A
last fresh process prepares the same corpus again (a cache hit). ``--reference`` also runs the
path that reads every line as its own record (``prepare.READ_IN_BLOCKS = False``), which the
block path must equal byte for byte, for a ratio measured in the same run. If memory is flat, the
peak barely moves while the corpus grows tenfold.

BPE runs in the Hugging Face tokenizers library (training, and ``encode_batch``); its speed sets
the BPE figure. It uses RAYON_NUM_THREADS threads (see studio/core/data/tokenizers/bpe.py).

Memory is the process's anonymous resident memory (RssAnon, sampled every 20 ms): what it holds
itself. Pages of the memory-mapped token file also show in the resident set while they are
cached, but they are file-backed and the kernel drops them under pressure, which is what lets a
corpus larger than RAM train; the peak total resident set is printed too, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(corpus: Path, tokenizer: str, reference: bool) -> None:
    import threading

    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _anon_mb())

    threading.Thread(target=sample, daemon=True).start()
    from studio.core.config import DataConfig, TokenizerConfig
    from studio.core.data import prepare
    from studio.core.training.batches import WindowSampler

    if reference:
        prepare.READ_IN_BLOCKS = False  # (an older Studio has no such switch: it always reads lines)
    started = time.perf_counter()
    prepared = prepare.prepare_corpus(DataConfig(paths=[str(corpus)]), TokenizerConfig(kind=tokenizer))
    seconds = time.perf_counter() - started
    sampler = WindowSampler(prepared.tokens("train"), 65, 64, seed=0)
    for _ in range(500):
        sampler.sample()
    done.set()
    peak[0] = max(peak[0], _anon_mb())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cache_hit": prepared.cache_hit, "anon_mb": peak[0], "rss_mb": rss_mb,
                      "tokens": prepared.stats.total.tokens}))


def write_corpus(path: Path, megabytes: int, kind: str = "stories") -> None:
    import random

    from studio.core.data.demo import english_story

    rng = random.Random(0)
    target = megabytes * 1_000_000
    written = 0
    if kind == "varied":
        syllables = ["ka", "lo", "mi", "ren", "sa", "tor", "vel", "an", "is", "qu", "dre", "fo", "ul", "ny", "ch", "ae"]
        words = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(20000)})
        weights = [1 / (rank + 10) for rank in range(len(words))]  # Zipf-like, as in prose
    with path.open("w", encoding="utf-8") as f:
        while written < target:
            if kind == "varied":
                lines = []
                for _ in range(2000):
                    line = " ".join(rng.choices(words, weights, k=rng.randint(3, 16)))
                    lines.append(line[:1].upper() + line[1:] + rng.choice([".", ".", ",", "?", "!", ";"]))
                block = "\n".join(lines) + "\n"
            else:
                block = "\n".join(english_story(rng) for _ in range(2000))
            f.write(block)
            written += len(block)


def _prepare_in_child(corpus: Path, tokenizer: str, reference: bool, cache: Path, scratch: Path) -> dict[str, float]:
    env = {**os.environ, "STUDIO_CACHE_DIR": str(cache), "STUDIO_DATA_DIR": str(scratch / "data")}
    command = [sys.executable, __file__, "--child", str(corpus), "--tokenizers", tokenizer]
    out = subprocess.run(command + (["--reference"] if reference else []), env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", default="50", help="corpus sizes, comma-separated (e.g. 50,250)")
    parser.add_argument("--tokenizers", default="char,bpe", help="char, bpe or both")
    parser.add_argument("--repeats", type=int, default=3, help="fresh builds per measurement (median and spread)")
    parser.add_argument("--corpus", default="stories", choices=["stories", "varied"])
    parser.add_argument("--reference", action="store_true", help="also time the line-by-line reference path")
    parser.add_argument("--child", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.tokenizers, args.reference)
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="studio-cache-bench-"))
    try:
        for size in (int(s) for s in args.sizes_mb.split(",")):
            corpus = scratch / f"corpus-{size}mb.txt"
            write_corpus(corpus, size, args.corpus)
            mb = corpus.stat().st_size / 1e6
            for tokenizer in args.tokenizers.split(","):
                for reference in [False, True] if args.reference else [False]:
                    path_name = "line by line (reference)" if reference else "blocks"
                    runs = []
                    for k in range(args.repeats):
                        cache = scratch / f"cache-{tokenizer}-{reference}-{k}"
                        runs.append(_prepare_in_child(corpus, tokenizer, reference, cache, scratch))
                        if k < args.repeats - 1:
                            shutil.rmtree(cache, ignore_errors=True)
                    hit = _prepare_in_child(corpus, tokenizer, reference, cache, scratch)  # the last build's cache
                    shutil.rmtree(cache, ignore_errors=True)
                    speeds = [mb / r["seconds"] for r in runs]
                    first = runs[0]
                    print(
                        f"{mb:.0f} MB {args.corpus} corpus, {tokenizer}, {path_name}: {statistics.median(speeds):.1f} MB/s "
                        f"(median of {len(runs)}, {min(speeds):.1f}-{max(speeds):.1f}; {first['tokens']:,} tokens); "
                        f"peak anonymous memory {max(r['anon_mb'] for r in runs):.0f} MB, resident set "
                        f"{max(r['rss_mb'] for r in runs):.0f} MB; cache hit={hit['cache_hit']} in {hit['seconds'] * 1000:.0f} ms "
                        f"(peak anonymous {hit['anon_mb']:.0f} MB)",
                        flush=True,
                    )
            corpus.unlink()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

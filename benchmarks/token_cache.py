"""Does the token cache keep memory flat and make the second run instant?

    python benchmarks/token_cache.py [--sizes-mb 25,250] [--tokenizer char]

For each size, a corpus of that many MB is written (Studio's demo stories, repeated with new
seeds), then a fresh process prepares it (scan, train the tokenizer, encode into the cache),
draws 500 training batches from the memory map, and reports its peak memory. A second fresh
process prepares the same corpus again (a cache hit). If memory is flat, the peak barely moves
while the corpus grows tenfold.

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


def child(corpus: Path, tokenizer: str) -> None:
    import threading

    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _anon_mb())

    threading.Thread(target=sample, daemon=True).start()
    from studio.core.config import DataConfig, TokenizerConfig
    from studio.core.data.prepare import prepare_corpus
    from studio.core.training.batches import WindowSampler

    started = time.perf_counter()
    prepared = prepare_corpus(DataConfig(paths=[str(corpus)]), TokenizerConfig(kind=tokenizer))
    seconds = time.perf_counter() - started
    sampler = WindowSampler(prepared.tokens("train"), 65, 64, seed=0)
    for _ in range(500):
        sampler.sample()
    done.set()
    peak[0] = max(peak[0], _anon_mb())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cache_hit": prepared.cache_hit, "anon_mb": peak[0], "rss_mb": rss_mb,
                      "tokens": prepared.stats.total.tokens}))


def write_corpus(path: Path, megabytes: int) -> None:
    import random

    from studio.core.data.demo import english_story

    rng = random.Random(0)
    target = megabytes * 1_000_000
    written = 0
    with path.open("w", encoding="utf-8") as f:
        while written < target:
            block = "\n".join(english_story(rng) for _ in range(2000))
            f.write(block)
            written += len(block)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", default="25,250")
    parser.add_argument("--tokenizer", default="char", choices=["char", "bpe"])
    parser.add_argument("--child", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.tokenizer)
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="studio-cache-bench-"))
    env = {**os.environ, "STUDIO_CACHE_DIR": str(scratch / "cache"), "STUDIO_DATA_DIR": str(scratch / "data")}
    for size in (int(s) for s in args.sizes_mb.split(",")):
        corpus = scratch / f"corpus-{size}mb.txt"
        write_corpus(corpus, size)
        runs = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(corpus), "--tokenizer", args.tokenizer],
                env=env, capture_output=True, text=True, check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        first, second = runs
        mb = corpus.stat().st_size / 1e6
        print(
            f"{mb:.0f} MB corpus ({first['tokens']:,} tokens, {args.tokenizer}): first prepare {first['seconds']:.1f} s "
            f"({mb / first['seconds']:.1f} MB/s), peak anonymous memory {first['anon_mb']:.0f} MB (resident set {first['rss_mb']:.0f} MB); "
            f"second run cache hit={second['cache_hit']} in {second['seconds'] * 1000:.0f} ms, "
            f"peak anonymous memory {second['anon_mb']:.0f} MB (resident set {second['rss_mb']:.0f} MB)",
            flush=True,
        )
        corpus.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How much faster do Transformers decode with the key-value cache?

    python benchmarks/decoding.py [--repeats 3] [--threads 1]

Three workloads, each timed with the cache and without it (re-reading the whole text every
step) in alternating rounds in one process; the medians and their ratio are printed, and the
outputs of both paths are checked to be identical:

- ``stream``: one prompt of 32 tokens, 200 new tokens (the Try page);
- ``batch``: 64 ragged prompts of 150-300 tokens, 48 new tokens each (scoring summarization,
  as in ``benchmarks/finetune_tasks.py``'s SciTLDR recipe);
- ``seq2seq``: the encoder-decoder writing 48 tokens for 64 sources of 100 tokens;
- ``lstm``: the ``batch`` workload for an LSTM, which carries its state from step to step
  instead of re-reading (the prompts are read once, packed).

Transformers have the benchmark recipes' sizes (4 layers, width 128, context 384), the LSTM
Studio's default size (2 layers of 224), all with random weights:
speed does not depend on what the weights are. The cache can never stop at <eos> early here,
since <eos> is masked out, so every path writes every token.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

VOCAB = 8000
CTX = 384


def _timed(fn: Callable[[], list[list[int]]]) -> tuple[float, list[list[int]]]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from studio.core.architectures import GPTConfig, LSTMConfig, Seq2SeqConfig
    from studio.core.data.special_tokens import EOS_ID, NUM_SPECIAL
    from studio.core.decoding import greedy
    from studio.core.decoding.greedy import batched_greedy
    from studio.core.models.gpt import GPT
    from studio.core.models.lstm import LSTMLanguageModel
    from studio.core.models.seq2seq import Seq2SeqTransformer

    # Every token is written: with <eos> banned the two paths do the same amount of work.
    ban = greedy.ban_specials
    greedy.ban_specials = lambda logits: ban(logits).index_fill(-1, torch.tensor([EOS_ID], device=logits.device), float("-inf"))

    torch.manual_seed(0)
    size = {"n_heads": 4, "d_model": 128, "context_length": CTX, "dropout": 0.0}
    gpt = GPT(GPTConfig(n_layers=4, **size), VOCAB).eval()  # type: ignore[arg-type]
    s2s = Seq2SeqTransformer(Seq2SeqConfig(n_encoder_layers=2, n_decoder_layers=2, **size), VOCAB).eval()  # type: ignore[arg-type]
    lstm = LSTMLanguageModel(LSTMConfig(context_length=CTX, dropout=0.0), VOCAB).eval()
    g = torch.Generator().manual_seed(0)

    def rand(n: int) -> list[int]:
        return torch.randint(NUM_SPECIAL, VOCAB, (n,), generator=g).tolist()

    ragged = [rand(int(n)) for n in torch.randint(150, 301, (64,), generator=g)]
    workloads = {
        "stream": (gpt, [rand(32)], 200),
        "batch": (gpt, ragged, 48),
        "seq2seq": (s2s, [rand(100) for _ in range(64)], 48),
        "lstm": (lstm, ragged, 48),
    }
    for name, (model, prompts, new) in workloads.items():
        times: dict[bool, list[float]] = {True: [], False: []}
        outputs: dict[bool, list[list[int]]] = {}
        for _ in range(args.repeats):
            for use_cache in (True, False):
                seconds, outputs[use_cache] = _timed(lambda: batched_greedy(model, prompts, new, use_cache=use_cache))  # noqa: B023
                times[use_cache].append(seconds)
        same = "identical" if outputs[True] == outputs[False] else "DIFFERENT"
        tokens = sum(len(row) for row in outputs[True])
        cached, plain = statistics.median(times[True]), statistics.median(times[False])
        print(
            f"{name}: {len(prompts)} prompt(s), {tokens:,} tokens written; cache {cached:.2f} s "
            f"({tokens / cached:,.0f} tokens/s), re-reading {plain:.2f} s ({tokens / plain:,.0f} tokens/s); "
            f"speed-up {plain / cached:.1f}x; outputs {same} (median of {args.repeats}, threads {args.threads})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

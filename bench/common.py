"""What both benchmarks share: the HH data, the kept-examples rule, timing, FLOP counting, the peak.

Timing. Each trainer reports the wall-clock time at the end of every optimiser step (ours through
`on_log`, TRL through a `TrainerCallback`). Throughput is measured over steps 2..N: the first step
pays one-off costs (allocator warm-up, lazy initialisation) that say nothing about training speed.
The end-to-end wall time of each side (model load + tokenisation + training + final save) is
reported next to it.

FLOPs. Counted analytically, per token: a forward pass costs 2 x N_matmul + 2 x n_layers x ctx x d
(the weight matmuls, plus attention scores and weighted values, as in Kaplan et al. 2020), a backward
pass twice that. Kaplan's attention term is a causal model's: token i attends to i positions, and
the scores (Q.K) and the weighted values (A.V) cost 2 x i x d FLOPs each, 4 x i x d together, which
averages 2 x ctx x d over the sequence. In a bidirectional encoder every token attends to all ctx
positions, so its term is 4 x n_layers x ctx x d (`bidirectional=True`). N_matmul = parameters that
take part in a matrix multiply: all of them except the token/position embedding tables (lookups),
plus the LM head for causal LMs (tied to the embeddings in SmolLM2, but a real matmul). Only real
tokens count, never padding.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "hh-harmless-dev.jsonl"


FLOPS_NOTE = (
    "analytic: 3 x (2 x matmul params + a x layers x len x d_model) per real token "
    "(forward + backward), a = 2 for causal models (a token attends to len/2 positions on average), "
    "4 for bidirectional encoders; padding not counted"
)


def emit(result: dict[str, Any]) -> None:
    """The one JSON object a bench prints on stdout."""
    print(json.dumps(result, indent=2, sort_keys=False, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def skip(reason: str) -> None:
    """A bench without its data is skipped, not failed: say why and exit 0."""
    emit({"skipped": True, "reason": reason})
    sys.exit(0)


def load_pairs(path: Path) -> tuple[list[Any], int]:
    """Preference pairs from an HH or TRL JSONL file, and how many malformed rows were skipped.

    A handful of real HH rows have chosen/rejected transcripts that differ before the last reply
    (5 of 1,825 in the dev file); they are not preference pairs over one prompt, so they are left out
    and counted rather than failing the whole run.
    """
    from training.ml.data import DataError, example_from_row

    examples, skipped = [], 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                examples.extend(example_from_row(json.loads(line)))
            except (DataError, json.JSONDecodeError):
                skipped += 1
    return examples, skipped


def split(examples: Sequence[Any], *, eval_fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """A fixed shuffled split: (train, held-out)."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    cut = round(len(order) * (1 - eval_fraction))
    return [examples[i] for i in order[:cut]], [examples[i] for i in order[cut:]]


@dataclass
class Kept:
    """Pairs whose chosen and rejected sequences both fit in max_length, tokenised once."""

    examples: list[Any]
    chosen: list[list[int]]
    rejected: list[list[int]]
    prompt_len: list[int]
    dropped: int

    def tokens(self) -> int:
        return sum(len(c) + len(r) for c, r in zip(self.chosen, self.rejected, strict=True))


def head(kept: Kept, n: int) -> Kept:
    """The first n kept pairs (the pool is already shuffled)."""
    return Kept(kept.examples[:n], kept.chosen[:n], kept.rejected[:n], kept.prompt_len[:n], kept.dropped)


def keep_within(tokenizer: Any, examples: Sequence[Any], *, max_length: int, is_encoder: bool) -> Kept:
    """TRL drops sequences longer than max_length; we truncate them. To compare the two on the same
    work, both trainers get only the pairs that need neither: tokenised in full (our library's
    tokenisation, chat template included), a pair is kept when both sequences fit."""
    from training.ml.tokenization import tokenize_pairs

    full = tokenize_pairs(tokenizer, list(examples), max_length=10**9, is_encoder=is_encoder)
    kept = Kept([], [], [], [], 0)
    for i, example in enumerate(examples):
        if len(full.chosen[i]) <= max_length and len(full.rejected[i]) <= max_length:
            kept.examples.append(example)
            kept.chosen.append(full.chosen[i])
            kept.rejected.append(full.rejected[i])
            kept.prompt_len.append(full.prompt_len[i])
        else:
            kept.dropped += 1
    return kept


def peak_gflops(*, size: int = 2048, seconds: float = 3.0) -> float:
    """The machine's fp32 limit, measured now: the best rate of a large square matmul."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best / 1e9


def matmul_params(model: torch.nn.Module, *, causal_lm: bool) -> int:
    """Parameters used in matrix multiplies (see the module docstring)."""
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    total = sum(p.numel() for p in model.parameters() if id(p) not in embedding_ids)
    if causal_lm:
        head = model.get_output_embeddings()
        if head is not None and id(head.weight) in embedding_ids:  # tied: count the head's matmul once
            total += head.weight.numel()
    return total


def train_flops(
    *,
    matmul_params: int,
    n_layers: int,
    d_model: int,
    sequences: Sequence[int],
    forward_only: bool = False,
    bidirectional: bool = False,
) -> float:
    """FLOPs to train on (or, with forward_only, to run) sequences of the given real lengths.

    bidirectional: every token attends to the whole sequence (encoders), not to the tokens before it.
    """
    attention = (4 if bidirectional else 2) * n_layers * d_model  # per token, per position attended
    per_pass = sum(length * (2 * matmul_params + attention * length) for length in sequences)
    return per_pass if forward_only else 3 * per_pass


@dataclass
class StepClock:
    """Wall-clock and process CPU time at the end of each optimiser step.

    CPU time (all threads of this process) is reported next to wall time because the cores may be
    shared: other processes stretch this one's wall time but barely its CPU time.
    """

    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)

    def tick(self) -> None:
        self.times.append(time.perf_counter())
        self.cpu_times.append(time.process_time())

    def on_log(self, event: dict[str, Any]) -> None:
        if event.get("event") == "step":
            self.tick()

    def steady_seconds(self) -> float:
        """Seconds from the end of step 1 to the end of the last step."""
        if len(self.times) < 2:
            raise RuntimeError("Need at least 2 optimiser steps to time training; raise --pairs.")
        return self.times[-1] - self.times[0]

    def steady_cpu_seconds(self) -> float:
        self.steady_seconds()  # same precondition
        return self.cpu_times[-1] - self.cpu_times[0]


def trl_step_callback(clock: StepClock) -> Any:
    from transformers import TrainerCallback

    class _Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.tick()

    return _Clock()


def best_clock(clocks: Sequence[StepClock]) -> StepClock:
    """Of several identical runs, the least disturbed one (the fastest): noise only ever slows a run."""
    return min(clocks, key=lambda clock: clock.steady_seconds())


def steady_pairs(batch_sizes: Sequence[int]) -> int:
    """Pairs trained in steps 2..N (those the steady clock covers)."""
    return sum(batch_sizes[1:])


def batch_sizes(n: int, batch_size: int) -> list[int]:
    return [min(batch_size, n - start) for start in range(0, n, batch_size)]


def settings(args: Any, **extra: Any) -> dict[str, Any]:
    import transformers
    import trl

    return {
        **vars(args),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
        },
        **extra,
    }

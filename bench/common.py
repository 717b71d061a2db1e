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

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
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


def comparison_parser(
    doc: str,
    *,
    pairs: int,
    eval_pairs: int,
    batch_size: int,
    lr: float,
    repeats: int,
    model: str,
    model_help: str,
) -> argparse.ArgumentParser:
    """The flags every ours-against-TRL bench takes; each bench adds its own and calls `parse`."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=pairs, help="training pairs (after the length filter)")
    parser.add_argument("--eval-pairs", type=int, default=eval_pairs, help="held-out pairs for accuracy")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per sequence")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="pairs per optimiser step")
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=repeats, help="interleaved runs per side; the best counts"
    )
    parser.add_argument("--model", default=model, help=model_help)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--skip-trl", action="store_true", help="time ours only (profiling)")
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    for name in ("pairs", "eval_pairs", "max_length", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def prepare_pairs(
    args: argparse.Namespace, load_tokenizer: Callable[[str], tuple[Any, Any]], *, is_encoder: bool
) -> dict[str, Any]:
    """Load, split and length-filter the data, tokenised once with our tokenisation.

    load_tokenizer maps --model to (resolved path, tokenizer); it runs only once the data is there.
    """
    if not args.data.is_file():
        skip(f"{args.data} is absent")
    examples, bad_rows = load_pairs(args.data)
    train_pool, eval_pool = split(examples, eval_fraction=0.2, seed=args.seed)
    path, tokenizer = load_tokenizer(args.model)
    train = keep_within(tokenizer, train_pool, max_length=args.max_length, is_encoder=is_encoder)
    held = keep_within(tokenizer, eval_pool, max_length=args.max_length, is_encoder=is_encoder)
    if len(train.examples) < args.pairs or not held.examples:
        skip(
            f"only {len(train.examples)} training pairs fit in {args.max_length} tokens; "
            f"asked for {args.pairs}"
        )
    return {
        "path": path,
        "tokenizer": tokenizer,
        "train": head(train, args.pairs),
        "held": head(held, args.eval_pairs),
        "bad_rows": bad_rows,
    }


def interleaved_runs(
    args: argparse.Namespace, data: dict[str, Any], run_ours: Callable, run_trl: Callable, *, prefix: str
) -> tuple[list[float], list[dict[str, Any]], list[dict[str, Any]]]:
    """(peaks, ours runs, TRL runs). Interleaved (ours, TRL, ours, TRL, ...) so that a burst of load
    on the shared machine hits both sides alike; each side's best run counts."""
    import tempfile

    peaks, ours_runs, trl_runs = [], [], []
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        for repeat in range(args.repeats):
            peaks.append(peak_gflops())
            ours_runs.append(run_ours(args, data, Path(tmp) / f"ours-{repeat}"))
            if not args.skip_trl:
                trl_runs.append(run_trl(args, data, Path(tmp) / f"trl-{repeat}"))
    return peaks, ours_runs, trl_runs


def train_ours(
    kind: str, args: argparse.Namespace, data: dict[str, Any], workdir: Path, *, epochs: float, **extra: Any
) -> tuple[Any, StepClock, float]:
    """Our trainer on the kept pairs with the settings TRL gets too: (result, step clock, wall seconds)."""
    from training.ml.api import run_training

    config = {
        "model": str(data["path"]),
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "epochs": epochs,
        "lr": args.lr,
        "warmup_ratio": args.warmup_ratio,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "seed": args.seed,
        "device": "cpu",
        **extra,
    }
    clock = StepClock()
    start = time.perf_counter()
    result = run_training(kind, config, data["train"].examples, output_dir=workdir, on_log=clock.on_log)
    return result, clock, time.perf_counter() - start


def trl_training_args(
    args: argparse.Namespace, workdir: Path, *, pairs: int, epochs: float
) -> dict[str, Any]:
    """The TRL config fields that match our trainer's settings (see each bench's docstring)."""
    total_steps = math.ceil(epochs * math.ceil(pairs / args.batch_size))
    return {
        "output_dir": str(workdir),
        "per_device_train_batch_size": args.batch_size,
        "num_train_epochs": epochs,
        "learning_rate": args.lr,
        "lr_scheduler_type": "linear",
        "warmup_steps": math.ceil(args.warmup_ratio * total_steps),
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "optim": "adamw_torch",
        "max_length": args.max_length,
        "bf16": False,  # TRL defaults to bf16, ~20x slower on CPU; ours trains in fp32 on CPU
        "eval_strategy": "no",
        "save_strategy": "no",
        "report_to": "none",
        "logging_steps": 10,
        "disable_tqdm": True,
        "seed": args.seed,
        "use_cpu": True,
    }


def comparison_summary(
    args: argparse.Namespace,
    data: dict[str, Any],
    *,
    benchmark: str,
    sizes: Sequence[int],
    peaks: Sequence[float],
    ours_runs: Sequence[dict[str, Any]],
    trl_runs: Sequence[dict[str, Any]],
    ours_run_flops: float,
    ours_accuracy: float,
    trl_accuracy: float | None,
    notes: dict[str, str],
) -> dict[str, Any]:
    """The throughput result both sides are reported in; notes say what was kept, timed and counted.

    ours_run_flops: the whole run's FLOPs, scaled here to the timed window's share of pairs.
    """
    train: Kept = data["train"]
    pairs = steady_pairs(sizes)
    ours_clock = best_clock([run["clock"] for run in ours_runs])
    ours_pps = pairs / ours_clock.steady_seconds()
    ours_flops = ours_run_flops * pairs / sum(sizes)
    result: dict[str, Any] = {
        "benchmark": benchmark,
        "model": args.model,
        "ours_pairs_per_s": ours_pps,
        "trl_pairs_per_s": None,
        "ratio": None,
        "ours_accuracy": ours_accuracy,
        "trl_accuracy": trl_accuracy,
        "ours_gflops": ours_flops / ours_clock.steady_seconds() / 1e9,
        "peak_gflops": max(peaks),
        "ours_pairs_per_cpu_s": pairs / ours_clock.steady_cpu_seconds(),
        "ours_pairs_per_s_each_run": [pairs / run["clock"].steady_seconds() for run in ours_runs],
        "ours_wall_s_each_run": [run["wall"] for run in ours_runs],
        "peak_gflops_each_repeat": list(peaks),
        "ours_steps": ours_runs[0]["steps"],
        "train_pairs": len(train.examples),
        "eval_pairs": len(data["held"].examples),
        "train_tokens": train.tokens(),
        **notes,
    }
    if trl_runs:
        trl_clock = best_clock([run["clock"] for run in trl_runs])
        trl_pps = pairs / trl_clock.steady_seconds()
        result.update(
            trl_pairs_per_s=trl_pps,
            ratio=ours_pps / trl_pps,
            trl_pairs_per_cpu_s=pairs / trl_clock.steady_cpu_seconds(),
            ratio_cpu_time=trl_clock.steady_cpu_seconds() / ours_clock.steady_cpu_seconds(),
            trl_pairs_per_s_each_run=[pairs / run["clock"].steady_seconds() for run in trl_runs],
            trl_wall_s_each_run=[run["wall"] for run in trl_runs],
            trl_steps=trl_runs[0]["steps"],
            trl_kept_pairs=trl_runs[0]["kept_by_trl"],
        )
    return result

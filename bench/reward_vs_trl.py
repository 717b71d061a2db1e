"""Reward-model training speed, ours against TRL's RewardTrainer, on the same pairs, in one run.

    .venv/bin/python bench/reward_vs_trl.py --pairs 256 --max-length 256 --batch-size 16

Both sides train `minilm-l6` (all-MiniLM-L6-v2) for one epoch over the same kept pairs (see
`common.keep_within`), in fp32, with AdamW at the same learning rate, linear decay after the same
warmup, gradient clipping at 1.0, no gradient checkpointing, no evaluation or saving inside the
timed part, dropout off (TRL's default; ours uses the model's config). TRL gets the very token ids
ours trains on (`chosen_ids` / `rejected_ids`, TRL's documented pre-tokenised input): BERT
tokenizers have no EOS token, which TRL's text path appends, so a BERT user pre-tokenises anyway.
Then both models are evaluated the same way on held-out pairs (pairwise accuracy). Prints one JSON
object.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench import common

MODEL = "minilm-l6"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=256, help="training pairs (after the length filter)")
    parser.add_argument("--eval-pairs", type=int, default=200, help="held-out pairs for accuracy")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per sequence")
    parser.add_argument("--batch-size", type=int, default=16, help="pairs per optimiser step")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=MODEL, help="backbone (short name or directory)")
    parser.add_argument("--data", type=Path, default=common.DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per side; the best counts")
    parser.add_argument("--skip-trl", action="store_true", help="time ours only (profiling)")
    args = parser.parse_args(argv)
    for name in ("pairs", "eval_pairs", "max_length", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Load, split and length-filter the data; tokenise once with our tokenisation."""
    from transformers import AutoTokenizer

    from training.ml.hub import resolve_model

    if not args.data.is_file():
        common.skip(f"{args.data} is absent")
    examples, bad_rows = common.load_pairs(args.data)
    train_pool, eval_pool = common.split(examples, eval_fraction=0.2, seed=args.seed)
    path = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    train = common.keep_within(tokenizer, train_pool, max_length=args.max_length, is_encoder=True)
    held = common.keep_within(tokenizer, eval_pool, max_length=args.max_length, is_encoder=True)
    if len(train.examples) < args.pairs or len(held.examples) < 1:
        common.skip(
            f"only {len(train.examples)} training pairs fit in {args.max_length} tokens; "
            f"asked for {args.pairs}"
        )
    train = common.head(train, args.pairs)
    held = common.head(held, args.eval_pairs)
    return {"path": path, "tokenizer": tokenizer, "train": train, "held": held, "bad_rows": bad_rows}


def run_ours(args: argparse.Namespace, data: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from training.ml.api import run_training
    from training.ml.serving import RewardScorer

    config = {
        "model": str(data["path"]),
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "lr": args.lr,
        "warmup_ratio": args.warmup_ratio,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "seed": args.seed,
        "device": "cpu",
    }
    clock = common.StepClock()
    start = time.perf_counter()
    result = run_training(
        "reward_model", config, data["train"].examples, output_dir=workdir, on_log=clock.on_log
    )
    wall = time.perf_counter() - start
    scorer = RewardScorer.load(result.checkpoint_dir, device="cpu")
    metrics = scorer.evaluate(data["held"].examples)
    return {
        "clock": clock,
        "wall": wall,
        "accuracy": metrics["accuracy"],
        "model": scorer.model,
        "steps": result.steps,
    }


def run_trl(args: argparse.Namespace, data: dict[str, Any], workdir: Path) -> dict[str, Any]:
    import math

    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    train: common.Kept = data["train"]
    total_steps = math.ceil(args.epochs * math.ceil(len(train.examples) / args.batch_size))
    config = RewardConfig(
        output_dir=str(workdir),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        lr_scheduler_type="linear",
        warmup_steps=math.ceil(args.warmup_ratio * total_steps),
        weight_decay=0.0,
        max_grad_norm=1.0,
        optim="adamw_torch",
        max_length=args.max_length,
        bf16=False,  # TRL defaults to bf16, ~20x slower on CPU; ours trains in fp32 on CPU
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=True,
        seed=args.seed,
        use_cpu=True,
    )
    dataset = Dataset.from_dict({"chosen_ids": train.chosen, "rejected_ids": train.rejected})
    clock = common.StepClock()
    start = time.perf_counter()
    trainer = RewardTrainer(
        model=str(data["path"]),
        args=config,
        train_dataset=dataset,
        processing_class=data["tokenizer"],
        callbacks=[common.trl_step_callback(clock)],
    )
    kept_by_trl = len(trainer.train_dataset)
    with contextlib.redirect_stdout(sys.stderr):  # TRL prints its summary; stdout is for our JSON
        trainer.train()
    wall = time.perf_counter() - start
    model = trainer.model.eval()
    accuracy = pairwise_accuracy(
        lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits.squeeze(-1),
        data["held"],
        pad_id=data["tokenizer"].pad_token_id,
    )
    return {
        "clock": clock,
        "wall": wall,
        "accuracy": accuracy,
        "kept_by_trl": kept_by_trl,
        "steps": trainer.state.global_step,
    }


@torch.inference_mode()
def pairwise_accuracy(score, held: common.Kept, *, pad_id: int, batch_size: int = 64) -> float:
    """Share of held-out pairs whose chosen sequence scores higher (ties count half)."""
    from training.ml.reward import pad_batch

    rewards = []
    sequences = held.chosen + held.rejected
    for start in range(0, len(sequences), batch_size):
        ids, mask = pad_batch(sequences[start : start + batch_size], pad_id)
        rewards.append(score(ids, mask).float())
    flat = torch.cat(rewards)
    chosen, rejected = flat[: len(held.chosen)], flat[len(held.chosen) :]
    return ((chosen > rejected).float() + 0.5 * (chosen == rejected).float()).mean().item()


def flops_of(model: torch.nn.Module, train: common.Kept, epochs: float) -> float:
    from training.ml.backbone import is_encoder

    config = model.config
    per_epoch = common.train_flops(
        matmul_params=common.matmul_params(model, causal_lm=False),
        n_layers=config.num_hidden_layers,
        d_model=config.hidden_size,
        sequences=[len(s) for s in train.chosen + train.rejected],
        bidirectional=is_encoder(config),
    )
    return per_epoch * epochs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    data = prepare(args)
    peaks, ours_runs, trl_runs = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-reward-") as tmp:
        # Interleaved repeats (ours, TRL, ours, TRL, ...) so that a burst of load on the shared
        # machine hits both sides alike; each side's best run counts.
        for repeat in range(args.repeats):
            peaks.append(common.peak_gflops())
            ours_runs.append(run_ours(args, data, Path(tmp) / f"ours-{repeat}"))
            if not args.skip_trl:
                trl_runs.append(run_trl(args, data, Path(tmp) / f"trl-{repeat}"))
    result = summarise(args, data, peaks, ours_runs, trl_runs)
    common.emit(result)
    return result


def summarise(args, data, peaks, ours_runs, trl_runs) -> dict[str, Any]:
    train: common.Kept = data["train"]
    sizes = common.batch_sizes(len(train.examples), args.batch_size) * max(1, round(args.epochs))
    steady_pairs = common.steady_pairs(sizes)
    ours_clock = common.best_clock([run["clock"] for run in ours_runs])
    ours_pps = steady_pairs / ours_clock.steady_seconds()
    # FLOPs of the timed window: the whole run's FLOPs scaled by the share of pairs in the window.
    ours_flops = flops_of(ours_runs[0]["model"].backbone, train, args.epochs) * steady_pairs / sum(sizes)
    result: dict[str, Any] = {
        "benchmark": "reward_model",
        "model": args.model,
        "ours_pairs_per_s": ours_pps,
        "trl_pairs_per_s": None,
        "ratio": None,
        "ours_accuracy": ours_runs[0]["accuracy"],
        "trl_accuracy": None,
        "ours_gflops": ours_flops / ours_clock.steady_seconds() / 1e9,
        "peak_gflops": max(peaks),
        "ours_pairs_per_cpu_s": steady_pairs / ours_clock.steady_cpu_seconds(),
        "ours_pairs_per_s_each_run": [steady_pairs / run["clock"].steady_seconds() for run in ours_runs],
        "ours_wall_s_each_run": [run["wall"] for run in ours_runs],
        "peak_gflops_each_repeat": peaks,
        "ours_steps": ours_runs[0]["steps"],
        "train_pairs": len(train.examples),
        "eval_pairs": len(data["held"].examples),
        "train_tokens": train.tokens(),
        "kept_examples": (
            f"pairs whose chosen and rejected both fit in {args.max_length} tokens (our tokenisation, "
            f"which TRL is then given as ids); {train.dropped} longer training pairs and "
            f"{data['held'].dropped} longer held-out pairs were left out for BOTH trainers; "
            f"{data['bad_rows']} malformed HH rows skipped"
        ),
        "timing": (
            "steady state: pairs in optimiser steps 2..N / seconds from the end of step 1 to the end "
            f"of step N; best of {args.repeats} interleaved runs per side; 2 shared CPU cores, so noisy"
        ),
        "flops": common.FLOPS_NOTE,
    }
    if trl_runs:
        trl_clock = common.best_clock([run["clock"] for run in trl_runs])
        trl_pps = steady_pairs / trl_clock.steady_seconds()
        result.update(
            trl_pairs_per_s=trl_pps,
            ratio=ours_pps / trl_pps,
            trl_accuracy=trl_runs[0]["accuracy"],
            trl_pairs_per_cpu_s=steady_pairs / trl_clock.steady_cpu_seconds(),
            ratio_cpu_time=(steady_pairs / ours_clock.steady_cpu_seconds())
            / (steady_pairs / trl_clock.steady_cpu_seconds()),
            trl_pairs_per_s_each_run=[steady_pairs / run["clock"].steady_seconds() for run in trl_runs],
            trl_wall_s_each_run=[run["wall"] for run in trl_runs],
            trl_steps=trl_runs[0]["steps"],
            trl_kept_pairs=trl_runs[0]["kept_by_trl"],
        )
    result["settings"] = common.settings(args, data=str(args.data))
    return result


if __name__ == "__main__":
    main()

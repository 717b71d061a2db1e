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
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench import common

MODEL = "minilm-l6"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.comparison_parser(
        __doc__,
        pairs=256,
        eval_pairs=200,
        batch_size=16,
        lr=5e-5,
        repeats=2,
        model=MODEL,
        model_help="backbone (short name or directory)",
    )
    parser.add_argument("--epochs", type=float, default=1.0)
    return common.parse(parser, argv)


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from training.ml.hub import resolve_model

    def load_tokenizer(model: str) -> tuple[Any, Any]:
        path = resolve_model(model)
        return path, AutoTokenizer.from_pretrained(path)

    return common.prepare_pairs(args, load_tokenizer, is_encoder=True)


def run_ours(args: argparse.Namespace, data: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from training.ml.serving import RewardScorer

    result, clock, wall = common.train_ours("reward_model", args, data, workdir, epochs=args.epochs)
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
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    train: common.Kept = data["train"]
    config = RewardConfig(
        **common.trl_training_args(args, workdir, pairs=len(train.examples), epochs=args.epochs)
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
    peaks, ours_runs, trl_runs = common.interleaved_runs(
        args, data, run_ours, run_trl, prefix="bench-reward-"
    )
    result = summarise(args, data, peaks, ours_runs, trl_runs)
    common.emit(result)
    return result


def summarise(args, data, peaks, ours_runs, trl_runs) -> dict[str, Any]:
    train: common.Kept = data["train"]
    result = common.comparison_summary(
        args,
        data,
        benchmark="reward_model",
        sizes=common.batch_sizes(len(train.examples), args.batch_size) * max(1, round(args.epochs)),
        peaks=peaks,
        ours_runs=ours_runs,
        trl_runs=trl_runs,
        ours_run_flops=flops_of(ours_runs[0]["model"].backbone, train, args.epochs),
        ours_accuracy=ours_runs[0]["accuracy"],
        trl_accuracy=trl_runs[0]["accuracy"] if trl_runs else None,
        notes={
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
        },
    )
    result["settings"] = common.settings(args, data=str(args.data))
    return result


if __name__ == "__main__":
    main()

"""DPO training speed, ours against TRL's DPOTrainer, on the same pairs, in one run.

    .venv/bin/python bench/dpo_vs_trl.py --pairs 32 --max-length 256 --batch-size 4

Both sides train `smollm2-135m` (SmolLM2-135M-Instruct) with the sigmoid DPO loss at the same beta,
for one epoch over the same kept pairs (see `common.keep_within`: both sequences fit in max_length,
so neither side truncates), in fp32, AdamW at the same learning rate with the same warmup and
linear decay, clipping at 1.0, no gradient checkpointing, no evaluation or saving inside the timed
part, dropout off (TRL's default). TRL gets the conversations (its chat-template path, as a user
would feed it) and precomputes its reference log-probs once, as ours does (`precompute_ref_log_probs`;
without it TRL would run the reference model at every step, which would flatter us). Afterwards
both policies are scored by ONE function on held-out pairs: implicit-reward accuracy, i.e. how often
beta * log(pi/ref) of the chosen reply beats the rejected one's. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench import common

MODEL = "smollm2-135m"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=32, help="training pairs (after the length filter)")
    parser.add_argument("--eval-pairs", type=int, default=32, help="held-out pairs for accuracy")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per sequence")
    parser.add_argument("--batch-size", type=int, default=4, help="pairs per optimiser step")
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved runs per side; the best counts")
    parser.add_argument("--model", default=MODEL, help="policy (short name or directory)")
    parser.add_argument("--data", type=Path, default=common.DEFAULT_DATA)
    parser.add_argument("--skip-trl", action="store_true", help="time ours only (profiling)")
    args = parser.parse_args(argv)
    for name in ("pairs", "eval_pairs", "max_length", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    from training.ml import backbone

    if not args.data.is_file():
        common.skip(f"{args.data} is absent")
    examples, bad_rows = common.load_pairs(args.data)
    train_pool, eval_pool = common.split(examples, eval_fraction=0.2, seed=args.seed)
    path = backbone.resolve(args.model)
    tokenizer = backbone.load_tokenizer(path)
    train = common.keep_within(tokenizer, train_pool, max_length=args.max_length, is_encoder=False)
    held = common.keep_within(tokenizer, eval_pool, max_length=args.max_length, is_encoder=False)
    if len(train.examples) < args.pairs or not held.examples:
        common.skip(f"only {len(train.examples)} training pairs fit in {args.max_length} tokens")
    return {
        "path": path,
        "tokenizer": tokenizer,
        "train": common.head(train, args.pairs),
        "held": common.head(held, args.eval_pairs),
        "bad_rows": bad_rows,
    }


def run_ours(args: argparse.Namespace, data: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from training.ml import backbone
    from training.ml.api import run_training

    config = {
        "model": str(data["path"]),
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "epochs": 1.0,
        "lr": args.lr,
        "beta": args.beta,
        "loss_type": "sigmoid",
        "warmup_ratio": args.warmup_ratio,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "seed": args.seed,
        "device": "cpu",
    }
    clock = common.StepClock()
    start = time.perf_counter()
    result = run_training("dpo", config, data["train"].examples, output_dir=workdir, on_log=clock.on_log)
    wall = time.perf_counter() - start
    policy = backbone.load_causal_lm(result.checkpoint_dir)
    return {"clock": clock, "wall": wall, "policy": policy, "steps": result.steps}


def trl_rows(examples: list[Any]) -> dict[str, list[Any]]:
    """TRL's conversational preference format with an explicit prompt."""
    rows: dict[str, list[Any]] = {"prompt": [], "chosen": [], "rejected": []}
    for example in examples:
        prompt = example.prompt
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        rows["prompt"].append(prompt)
        rows["chosen"].append([{"role": "assistant", "content": example.chosen}])
        rows["rejected"].append([{"role": "assistant", "content": example.rejected}])
    return rows


def run_trl(args: argparse.Namespace, data: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    train: common.Kept = data["train"]
    total_steps = math.ceil(len(train.examples) / args.batch_size)
    config = DPOConfig(
        output_dir=str(workdir),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=1,
        learning_rate=args.lr,
        beta=args.beta,
        loss_type=["sigmoid"],
        lr_scheduler_type="linear",
        warmup_steps=math.ceil(args.warmup_ratio * total_steps),
        weight_decay=0.0,
        max_grad_norm=1.0,
        optim="adamw_torch",
        max_length=args.max_length,
        precompute_ref_log_probs=True,
        bf16=False,  # TRL defaults to bf16, ~20x slower on CPU; ours trains in fp32 on CPU
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=True,
        seed=args.seed,
        use_cpu=True,
    )
    clock = common.StepClock()
    start = time.perf_counter()
    trainer = DPOTrainer(
        model=str(data["path"]),
        args=config,
        train_dataset=Dataset.from_dict(trl_rows(train.examples)),
        processing_class=data["tokenizer"],
        callbacks=[common.trl_step_callback(clock)],
    )
    prepared = trainer.train_dataset
    longest = max(
        len(p) + max(len(c), len(r))
        for p, c, r in zip(
            prepared["prompt_ids"], prepared["chosen_ids"], prepared["rejected_ids"], strict=True
        )
    )
    with contextlib.redirect_stdout(sys.stderr):  # TRL prints its summary; stdout is for our JSON
        trainer.train()
    wall = time.perf_counter() - start
    return {
        "clock": clock,
        "wall": wall,
        "policy": trainer.model.eval(),
        "steps": trainer.state.global_step,
        "kept_by_trl": len(prepared),
        "longest_trl_sequence": longest,
    }


@torch.inference_mode()
def sequence_logps(
    lm: torch.nn.Module, kept: common.Kept, *, pad_id: int, batch_size: int = 8
) -> torch.Tensor:
    """(N, 2) summed log-probs of the [chosen, rejected] replies, with our library's scorer."""
    from training.ml.policy import SequenceLogProbs, response_mask
    from training.ml.reward import pad_batch

    scorer = SequenceLogProbs(lm).eval()
    out = torch.zeros(len(kept.chosen), 2)
    for start in range(0, len(kept.chosen), batch_size):
        idx = list(range(start, min(start + batch_size, len(kept.chosen))))
        ids, mask = pad_batch([kept.chosen[i] for i in idx] + [kept.rejected[i] for i in idx], pad_id)
        plen = torch.tensor([kept.prompt_len[i] for i in idx] * 2)
        sums, _ = scorer(ids, mask, response_mask(mask, plen))
        out[idx] = torch.stack(sums.float().chunk(2), dim=1)
    return out


def implicit_accuracy(policy_logps: torch.Tensor, ref_logps: torch.Tensor) -> float:
    margin = (policy_logps[:, 0] - ref_logps[:, 0]) - (policy_logps[:, 1] - ref_logps[:, 1])
    return ((margin > 0).float() + 0.5 * (margin == 0).float()).mean().item()


def flops_of(lm: torch.nn.Module, train: common.Kept) -> float:
    """Useful training FLOPs: the policy's forward + backward over each pair's DISTINCT tokens
    (prompt once, then both replies: what a prompt-sharing trainer must compute, and what ours
    computes), plus the LM head on response tokens only (ours projects to the vocabulary only where
    a reply token is predicted). TRL's extra work (the prompt twice, the head everywhere) is not
    counted for anyone, so this never flatters a trainer that repeats work."""
    config = lm.config
    head = lm.get_output_embeddings().weight.numel()
    body = common.matmul_params(lm, causal_lm=True) - head
    packed = [
        len(c) + len(r) - p for c, r, p in zip(train.chosen, train.rejected, train.prompt_len, strict=True)
    ]
    response_tokens = sum(n - p for n, p in zip(packed, train.prompt_len, strict=True))
    trunk = common.train_flops(
        matmul_params=body, n_layers=config.num_hidden_layers, d_model=config.hidden_size, sequences=packed
    )
    return trunk + 6 * head * response_tokens


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from training.ml import backbone

    args = parse_args(argv)
    data = prepare(args)
    peaks, ours_runs, trl_runs = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-dpo-") as tmp:
        for repeat in range(args.repeats):
            peaks.append(common.peak_gflops())
            ours_runs.append(run_ours(args, data, Path(tmp) / f"ours-{repeat}"))
            if not args.skip_trl:
                trl_runs.append(run_trl(args, data, Path(tmp) / f"trl-{repeat}"))
    pad_id = data["tokenizer"].pad_token_id
    reference = backbone.load_causal_lm(data["path"]).eval()
    ref_logps = sequence_logps(reference, data["held"], pad_id=pad_id)
    ours_acc = implicit_accuracy(
        sequence_logps(ours_runs[0]["policy"], data["held"], pad_id=pad_id), ref_logps
    )
    trl_acc = (
        implicit_accuracy(sequence_logps(trl_runs[0]["policy"], data["held"], pad_id=pad_id), ref_logps)
        if trl_runs
        else None
    )
    result = summarise(args, data, peaks, ours_runs, trl_runs, ours_acc, trl_acc, reference)
    common.emit(result)
    return result


def summarise(args, data, peaks, ours_runs, trl_runs, ours_acc, trl_acc, reference) -> dict[str, Any]:
    train: common.Kept = data["train"]
    sizes = common.batch_sizes(len(train.examples), args.batch_size)
    steady_pairs = common.steady_pairs(sizes)
    ours_clock = common.best_clock([run["clock"] for run in ours_runs])
    ours_pps = steady_pairs / ours_clock.steady_seconds()
    ours_flops = flops_of(reference, train) * steady_pairs / sum(sizes)
    result: dict[str, Any] = {
        "benchmark": "dpo",
        "model": args.model,
        "ours_pairs_per_s": ours_pps,
        "trl_pairs_per_s": None,
        "ratio": None,
        "ours_accuracy": ours_acc,
        "trl_accuracy": trl_acc,
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
        "accuracy": "held-out implicit-reward accuracy, both policies scored by the same function",
        "kept_examples": (
            f"pairs whose chosen and rejected sequences (prompt + reply, chat template) both fit in "
            f"{args.max_length} tokens; {train.dropped} longer training pairs and {data['held'].dropped} "
            f"longer held-out pairs were left out for BOTH trainers; "
            f"{data['bad_rows']} malformed HH rows skipped"
        ),
        "timing": (
            "steady state: pairs in optimiser steps 2..N / seconds from the end of step 1 to the end of "
            f"step N (reference log-probs are precomputed by both, before step 1); best of {args.repeats} "
            "interleaved runs per side; 2 shared CPU cores, so noisy. *_wall_s include load, "
            "tokenisation, the reference pass and (ours) the final checkpoint"
        ),
        "flops": common.FLOPS_NOTE
        + "; each pair's distinct tokens (prompt once + both replies); LM head on reply tokens only; "
        "reference pass excluded",
    }
    if trl_runs:
        trl_clock = common.best_clock([run["clock"] for run in trl_runs])
        trl_pps = steady_pairs / trl_clock.steady_seconds()
        result.update(
            trl_pairs_per_s=trl_pps,
            ratio=ours_pps / trl_pps,
            trl_pairs_per_cpu_s=steady_pairs / trl_clock.steady_cpu_seconds(),
            ratio_cpu_time=trl_clock.steady_cpu_seconds() / ours_clock.steady_cpu_seconds(),
            trl_pairs_per_s_each_run=[steady_pairs / run["clock"].steady_seconds() for run in trl_runs],
            trl_wall_s_each_run=[run["wall"] for run in trl_runs],
            trl_steps=trl_runs[0]["steps"],
            trl_kept_pairs=trl_runs[0]["kept_by_trl"],
            trl_longest_sequence=trl_runs[0]["longest_trl_sequence"],
        )
    result["settings"] = common.settings(args, data=str(args.data))
    return result


if __name__ == "__main__":
    main()

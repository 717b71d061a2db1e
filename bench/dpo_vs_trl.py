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
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench import common

MODEL = "smollm2-135m"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.comparison_parser(
        __doc__,
        pairs=32,
        eval_pairs=32,
        batch_size=4,
        lr=1e-6,
        repeats=1,
        model=MODEL,
        model_help="policy (short name or directory)",
    )
    parser.add_argument("--beta", type=float, default=0.1)
    return common.parse(parser, argv)


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    from training.ml import backbone

    def load_tokenizer(model: str) -> tuple[Path, Any]:
        path = backbone.resolve(model)
        return path, backbone.load_tokenizer(path)

    return common.prepare_pairs(args, load_tokenizer, is_encoder=False)


def run_ours(args: argparse.Namespace, data: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from training.ml import backbone

    result, clock, wall = common.train_ours(
        "dpo", args, data, workdir, epochs=1.0, beta=args.beta, loss_type="sigmoid"
    )
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
    config = DPOConfig(
        **common.trl_training_args(args, workdir, pairs=len(train.examples), epochs=1),
        beta=args.beta,
        loss_type=["sigmoid"],
        precompute_ref_log_probs=True,
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
    peaks, ours_runs, trl_runs = common.interleaved_runs(args, data, run_ours, run_trl, prefix="bench-dpo-")
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
    result = common.comparison_summary(
        args,
        data,
        benchmark="dpo",
        sizes=common.batch_sizes(len(train.examples), args.batch_size),
        peaks=peaks,
        ours_runs=ours_runs,
        trl_runs=trl_runs,
        ours_run_flops=flops_of(reference, train),
        ours_accuracy=ours_acc,
        trl_accuracy=trl_acc,
        notes={
            "accuracy": "held-out implicit-reward accuracy, both policies scored by the same function",
            "kept_examples": (
                f"pairs whose chosen and rejected sequences (prompt + reply, chat template) both fit in "
                f"{args.max_length} tokens; {train.dropped} longer training pairs and "
                f"{data['held'].dropped} longer held-out pairs were left out for BOTH trainers; "
                f"{data['bad_rows']} malformed HH rows skipped"
            ),
            "timing": (
                "steady state: pairs in optimiser steps 2..N / seconds from the end of step 1 to the end "
                f"of step N (reference log-probs are precomputed by both, before step 1); best of "
                f"{args.repeats} interleaved runs per side; 2 shared CPU cores, so noisy. *_wall_s "
                "include load, tokenisation, the reference pass and (ours) the final checkpoint"
            ),
            "flops": common.FLOPS_NOTE
            + "; each pair's distinct tokens (prompt once + both replies); LM head on reply tokens only; "
            "reference pass excluded",
        },
    )
    if trl_runs:
        result["trl_longest_sequence"] = trl_runs[0]["longest_trl_sequence"]
    result["settings"] = common.settings(args, data=str(args.data))
    return result


if __name__ == "__main__":
    main()

"""Reward-model quality, ours against TRL's RewardTrainer: same backbone, split and budget.

    .venv/bin/python bench/reward_quality.py --max-length 128 --batch-size 16 --epochs 1

A fixed shuffled 80/20 split of the HH file (seed 0). Both sides train `minilm-l6` on the same 80%
with the same budget (epochs, batch size, learning rate, warmup, max length) and are evaluated on the
same 20% by pairwise accuracy. Long pairs are truncated by our library's rule (keep the end of the
prompt and the whole reply) and TRL is given those very token ids, so no pair is dropped on either
side and both see the same tokens. Prints one JSON object. Published small reward models reach about
0.65-0.74 on HH test splits; below 0.6 means a bug.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, reward_vs_trl


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--train-pairs", type=int, default=0, help="use only the first N of the 80%% (0: all)"
    )
    parser.add_argument("--eval-pairs", type=int, default=0, help="use only the first N of the 20%% (0: all)")
    parser.add_argument("--model", default=reward_vs_trl.MODEL)
    parser.add_argument("--data", type=Path, default=common.DEFAULT_DATA)
    parser.add_argument("--skip-trl", action="store_true")
    args = parser.parse_args(argv)
    if args.max_length < 8 or args.batch_size < 1 or args.train_pairs < 0 or args.eval_pairs < 0:
        parser.error("--max-length must be >= 8, --batch-size >= 1, pair counts >= 0")
    return args


def tokenised(tokenizer: Any, examples: list[Any], max_length: int) -> common.Kept:
    from training.ml.tokenization import tokenize_pairs

    pairs = tokenize_pairs(tokenizer, examples, max_length=max_length, is_encoder=True)
    return common.Kept(list(examples), pairs.chosen, pairs.rejected, pairs.prompt_len, 0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from training.ml.hub import resolve_model

    args = parse_args(argv)
    if not args.data.is_file():
        common.skip(f"{args.data} is absent")
    examples, bad_rows = common.load_pairs(args.data)
    train_examples, held_examples = common.split(examples, eval_fraction=0.2, seed=args.seed)
    if args.train_pairs:
        train_examples = train_examples[: args.train_pairs]
    if args.eval_pairs:
        held_examples = held_examples[: args.eval_pairs]
    path = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    data = {
        "path": path,
        "tokenizer": tokenizer,
        "train": tokenised(tokenizer, train_examples, args.max_length),
        "held": tokenised(tokenizer, held_examples, args.max_length),
    }
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        started = time.perf_counter()
        ours = reward_vs_trl.run_ours(args, data, Path(tmp) / "ours")
        ours_s = time.perf_counter() - started
        # On stderr at once: a long run killed during TRL's half still leaves ours' number.
        print(f"ours: accuracy {ours['accuracy']:.4f} after {ours_s:.0f}s", file=sys.stderr, flush=True)
        trl = None
        if not args.skip_trl:
            started = time.perf_counter()
            trl = reward_vs_trl.run_trl(args, data, Path(tmp) / "trl")
            trl_s = time.perf_counter() - started
    result = {
        "benchmark": "reward_quality",
        "model": args.model,
        "ours_accuracy": ours["accuracy"],
        "trl_accuracy": trl["accuracy"] if trl else None,
        "train_pairs": len(train_examples),
        "eval_pairs": len(held_examples),
        "split": (
            f"shuffled with seed {args.seed}, first 80% train, rest held out; "
            f"{bad_rows} malformed rows skipped"
        ),
        "ours_steps": ours["steps"],
        "trl_steps": trl["steps"] if trl else None,
        "ours_seconds": ours_s,
        "trl_seconds": trl_s if trl else None,
        "trl_kept_pairs": trl["kept_by_trl"] if trl else None,
        "settings": common.settings(args, data=str(args.data)),
    }
    common.emit(result)
    return result


if __name__ == "__main__":
    main()

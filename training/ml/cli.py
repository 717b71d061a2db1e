"""`python -m training.ml`: train and evaluate reward models, run DPO, score responses.

    python -m training.ml train-reward --data pairs.jsonl --model minilm-l6 --out runs/rm
    python -m training.ml eval-reward --model runs/rm --data held-out.jsonl
    python -m training.ml train-dpo --data pairs.jsonl --model smollm2-135m --out runs/dpo
    python -m training.ml score --model runs/rm --prompt "Hi" --response "Hello!" --response "Go away."
    python -m training.ml train-rl --method rloo --prompts prompts.jsonl --model smollm2-135m \
        --reward-model runs/rm --out runs/rloo

`--prompts` (train-rl) reads one prompt per line: a JSON string, {"prompt": text or conversation},
or a preference row whose prompt is taken (each distinct prompt once). `--data` reads HH-RLHF
({"chosen", "rejected"} transcripts) and TRL preference JSONL (explicit or implicit prompt, text or
conversations), detected per row. Results go to stdout as one JSON object;
progress goes to stderr, so `... | jq` works. Training resumes when `--out` already holds a
checkpoint of the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class CLIError(Exception):
    """A user error worth one line on stderr, not a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.ml",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def training_command(name: str, help: str) -> argparse.ArgumentParser:
        cmd = commands.add_parser(name, help=help, description=help)
        cmd.add_argument("--data", type=Path, required=True, help="HH or TRL preference JSONL")
        cmd.add_argument(
            "--model", required=True, help="short name (minilm-l6, smollm2-135m), directory or hub id"
        )
        cmd.add_argument("--out", type=Path, required=True, help="output directory (checkpoints; resumes)")
        cmd.add_argument(
            "--eval-data", type=Path, help="held-out pairs evaluated at the end (and every --eval-every)"
        )
        cmd.add_argument("--epochs", type=float)
        cmd.add_argument("--batch-size", type=int)
        cmd.add_argument("--max-length", type=int)
        cmd.add_argument("--lr", type=float)
        cmd.add_argument("--seed", type=int)
        cmd.add_argument("--eval-every", type=int)
        cmd.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
        cmd.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
        cmd.add_argument(
            "--config", type=Path, help="JSON file with more config keys (flags given here take precedence)"
        )
        cmd.add_argument("--quiet", action="store_true", help="no progress on stderr")
        return cmd

    training_command("train-reward", "Train a reward model (Bradley-Terry) on preference pairs.")
    dpo = training_command("train-dpo", "Fine-tune a causal LM with DPO (or IPO) against its starting point.")
    dpo.add_argument("--beta", type=float)
    dpo.add_argument("--loss-type", choices=["sigmoid", "ipo"])

    rl = commands.add_parser(
        "train-rl",
        help="Optimise a causal LM online against a reward model (rloo, ppo, soft_q: experimental).",
        description="Optimise a causal LM online against a reward model.",
    )
    rl.add_argument("--method", required=True, choices=["rloo", "ppo", "soft_q"])
    rl.add_argument("--prompts", type=Path, required=True, help="training prompts JSONL (see above)")
    rl.add_argument(
        "--model", required=True, help="policy to start from: short name, directory or checkpoint"
    )
    rl.add_argument("--reward-model", help="reward checkpoint scoring (prompt, response)")
    rl.add_argument("--out", type=Path, required=True, help="output directory (checkpoints; resumes)")
    for flag, kind in (
        ("--max-steps", int),
        ("--batch-size", int),
        ("--k", int),
        ("--max-new-tokens", int),
        ("--max-length", int),
        ("--lr", float),
        ("--beta", float),
        ("--temperature", float),
        ("--seed", int),
        ("--checkpoint-every", int),
    ):
        rl.add_argument(flag, type=kind)
    rl.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    rl.add_argument("--full", action="store_true", help="train all weights instead of LoRA adapters")
    rl.add_argument(
        "--config", type=Path, help="JSON file with more config keys (flags given here take precedence)"
    )
    rl.add_argument("--quiet", action="store_true", help="no progress on stderr")

    ev = commands.add_parser("eval-reward", help="Pairwise accuracy, margin and ECE of a reward model.")
    ev.add_argument("--model", type=Path, required=True, help="reward checkpoint (or its run directory)")
    ev.add_argument("--data", type=Path, required=True, help="HH or TRL preference JSONL")
    ev.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])

    score = commands.add_parser("score", help="Rewards of one or more responses to a prompt.")
    score.add_argument("--model", type=Path, required=True, help="reward checkpoint (or its run directory)")
    score.add_argument("--prompt", required=True, help="the user's message")
    score.add_argument("--response", action="append", required=True, help="a response (repeat for more)")
    score.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from training.ml.config import ConfigError
    from training.ml.data import DataError
    from training.ml.hub import ModelNotFoundError
    from training.ml.serving import ScoringError

    handlers = {
        "train-reward": lambda: _train("reward_model", args),
        "train-dpo": lambda: _train("dpo", args),
        "train-rl": lambda: _train_rl(args),
        "eval-reward": lambda: _eval_reward(args),
        "score": lambda: _score(args),
    }
    try:
        result = handlers[args.command]()
    except (CLIError, ConfigError, DataError, ModelNotFoundError, ScoringError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0


def _read_data(path: Path) -> list[Any]:
    from training.ml.data import read_preference_jsonl

    if not path.is_file():
        raise CLIError(f"--data {path} does not exist or is not a file.")
    return read_preference_jsonl(path)


def _config_file(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if args.config is not None:
        try:
            config = json.loads(args.config.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise CLIError(f"--config {args.config} is not a readable JSON file: {error}") from error
        if not isinstance(config, dict):
            raise CLIError(f"--config {args.config} must hold a JSON object of config keys.")
    return config


def _with_flags(args: argparse.Namespace, flags: dict[str, Any]) -> dict[str, Any]:
    """The --config file's keys, overridden by each flag that was given (None: not given)."""
    config = _config_file(args)
    config.update({key: value for key, value in flags.items() if value is not None})
    return config


def _config(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    flags = {
        "model": args.model,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "lr": args.lr,
        "seed": args.seed,
        "eval_every": args.eval_every,
        "device": args.device,
        "lora": True if args.lora else None,
    }
    if kind == "dpo":
        flags.update(beta=args.beta, loss_type=args.loss_type)
    return _with_flags(args, flags)


def _outcome(result: Any) -> dict[str, Any]:
    """What a training command prints: where the checkpoint is and how the run ended."""
    return {
        "checkpoint": str(result.checkpoint_dir),
        "steps": result.steps,
        "stopped": result.stopped,
        "metrics": result.metrics,
    }


def _train(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    from training.ml.api import run_training
    from training.ml.config import config_from_dict

    config = config_from_dict(kind, _config(kind, args))  # bad keys fail before data is read
    examples = _read_data(args.data)
    eval_examples = _read_data(args.eval_data) if args.eval_data else None
    progress = None if args.quiet else _Progress()
    result = run_training(
        kind,
        config.to_dict(),
        examples,
        output_dir=args.out,
        on_log=progress,
        eval_examples=eval_examples,
        lineage={"data": str(args.data), "source": "cli"},
    )
    return _outcome(result)


def _read_prompts(path: Path) -> list[Any]:
    """Training prompts from JSONL: strings, {"prompt": ...} rows, or preference rows' prompts."""
    if not path.is_file():
        raise CLIError(f"--prompts {path} does not exist or is not a file.")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if all(isinstance(r, str) or (isinstance(r, dict) and "prompt" in r and "chosen" not in r) for r in rows):
        prompts = [r if isinstance(r, str) else r["prompt"] for r in rows]
    else:
        prompts = [example.prompt for example in _read_data(path)]
    seen, unique = set(), []
    for prompt in prompts:
        key = json.dumps(prompt, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(prompt)
    if not unique:
        raise CLIError(f"--prompts {path} holds no prompts.")
    return unique


def _train_rl(args: argparse.Namespace) -> dict[str, Any]:
    from training.ml.api import run_rl
    from training.ml.config import config_from_dict

    flags = {
        "model": args.model,
        "reward_model": args.reward_model,
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "k": args.k,
        "max_new_tokens": args.max_new_tokens,
        "max_length": args.max_length,
        "lr": args.lr,
        "beta": args.beta,
        "temperature": args.temperature,
        "seed": args.seed,
        "checkpoint_every": args.checkpoint_every,
        "device": args.device,
        "lora": False if args.full else None,
    }
    cfg = config_from_dict(args.method, _with_flags(args, flags))  # bad keys fail before the models load
    if not cfg.reward_model:
        raise CLIError("--reward-model (or reward_model in --config) is required.")
    result = run_rl(
        args.method,
        cfg.to_dict(),
        _read_prompts(args.prompts),
        output_dir=args.out,
        on_log=None if args.quiet else _Progress(),
        lineage={"prompts": str(args.prompts), "reward_model": cfg.reward_model, "source": "cli"},
    )
    return _outcome(result)


def _eval_reward(args: argparse.Namespace) -> dict[str, Any]:
    from training.ml.serving import RewardScorer

    scorer = RewardScorer.load(args.model, device=args.device)
    metrics = scorer.evaluate(_read_data(args.data))
    return {key: metrics[key] for key in ("accuracy", "margin", "ece", "pairs")}


def _score(args: argparse.Namespace) -> dict[str, Any]:
    from training.ml.serving import RewardScorer

    scorer = RewardScorer.load(args.model, device=args.device)
    scores = scorer.score(args.prompt, args.response)
    return {"prompt": args.prompt, "scores": scores}


class _Progress:
    """One line on stderr per step and evaluation."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "step":
            metrics = event.get("metrics", {})
            rl = f"  reward {metrics['reward']:.3f}  kl {metrics['kl']:.3f}" if "reward" in metrics else ""
            print(
                f"step {event['step']}/{event['total_steps']}  loss {event['loss']:.4f}{rl}  "
                f"lr {event.get('lr', 0):.2e}  eta {event.get('eta_seconds', 0):.0f}s",
                file=sys.stderr,
                flush=True,
            )
        elif kind in ("eval", "data"):
            print(f"{kind} {json.dumps(event.get('metrics', {}), default=str)}", file=sys.stderr, flush=True)
        elif kind == "done":
            print(f"done in {time.monotonic() - self.started:.0f}s", file=sys.stderr, flush=True)

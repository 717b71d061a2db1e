"""Serve a trained reward model: score responses, compare two, evaluate on held-out pairs.

>>> scorer = RewardScorer.load("runs/rm-1/final")  # doctest: +SKIP
>>> scorer.score([{"role": "user", "content": "Hi"}], ["Hello!", "Go away."])  # doctest: +SKIP
[1.73, -0.42]
>>> scorer.prob_first_better("Hi", "Hello!", "Go away.")  # doctest: +SKIP
0.897

The checkpoint is one written by `run_training("reward_model", ...)`: safetensors weights and JSON
only, so loading it never unpickles anything. Scoring runs in inference mode, in batches whose
members have similar lengths (less padding), and returns results in the caller's order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.ml.data import Message, PreferenceExample
from training.ml.generation import pick_device


class ScoringError(ValueError):
    """A checkpoint that is not a reward model, or bad input to score."""


@dataclass
class RewardScorer:
    model: Any  # training.ml.reward.RewardModel, in eval mode
    source: Path
    batch_size: int = 32

    @classmethod
    def load(cls, checkpoint_dir: str | Path, *, device: str = "auto", batch_size: int = 32) -> RewardScorer:
        from training.ml.reward import RewardModel

        path = resolve_checkpoint(checkpoint_dir)
        try:
            model = RewardModel.load(path)
        except (KeyError, ValueError) as error:
            raise ScoringError(f"{path} is not a reward model checkpoint: {error}") from error
        model.to(pick_device(device)).eval()
        return cls(model=model, source=path, batch_size=batch_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def score(self, prompt: str | list[Message], responses: Sequence[str]) -> list[float]:
        """One reward per response to `prompt`, in the order given."""
        _check_input(prompt, responses)
        if not responses:
            return []
        return self.model.score(prompt, list(responses), batch_size=self.batch_size)

    def prob_first_better(self, prompt: str | list[Message], a: str, b: str) -> float:
        """P(a is preferred to b) under the Bradley-Terry model the reward was trained with."""
        reward_a, reward_b = self.score(prompt, [a, b])
        return 1.0 / (1.0 + math.exp(-(reward_a - reward_b)))

    @torch.inference_mode()
    def pooled(self, prompt: str | list[Message], responses: Sequence[str]) -> np.ndarray:
        """The vectors the reward head sees for each response to `prompt`, (N, H) float64, in the
        order given: ``reward = pooled @ head_weight + bias``. Active learning's Laplace posterior
        lives on this last layer (training.ml.acquisition)."""
        from training.ml.reward import pad_batch
        from training.ml.tokenization import tokenize_scoring

        _check_input(prompt, responses)
        model = self.model
        if not responses:
            return np.zeros((0, model.head.in_features))
        ids = tokenize_scoring(
            model.tokenizer, prompt, list(responses), max_length=model.max_length, is_encoder=model.encoder
        )
        pad = model.tokenizer.pad_token_id or 0
        parts = []
        for start in range(0, len(ids), self.batch_size):
            input_ids, mask = pad_batch(ids[start : start + self.batch_size], pad)
            vectors = model.pooled(mask.to(self.device), input_ids=input_ids.to(self.device))
            parts.append(vectors.double().cpu().numpy())
        return np.concatenate(parts)

    @property
    def head_weight(self) -> np.ndarray:
        """The reward head's weight vector, (H,) float64 (its bias cancels in any comparison)."""
        return self.model.head.weight.detach().double().cpu().numpy().reshape(-1)

    @torch.inference_mode()
    def rewards_for_pairs(self, examples: Sequence[PreferenceExample]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rewards of chosen and rejected for each pair, (N,) each, truncated by the training rule."""
        from training.ml.reward import pad_batch
        from training.ml.tokenization import tokenize_pairs

        model = self.model
        pairs = tokenize_pairs(
            model.tokenizer, list(examples), max_length=model.max_length, is_encoder=model.encoder
        )
        sequences = pairs.chosen + pairs.rejected
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))  # similar lengths together
        rewards = torch.empty(len(sequences))
        pad_id = model.tokenizer.pad_token_id or 0
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            ids, mask = pad_batch([sequences[i] for i in chunk], pad_id)
            rewards[chunk] = model(ids.to(self.device), mask.to(self.device)).float().cpu()
        return rewards[: len(pairs)], rewards[len(pairs) :]

    def evaluate(self, examples: Sequence[PreferenceExample]) -> dict[str, float]:
        """Pairwise accuracy, mean margin, ECE and pair count on labelled pairs (ties left out)."""
        from training.ml.reward import pairwise_metrics

        decided = [ex for ex in examples if not ex.is_tie]
        if not decided:
            raise ScoringError("There are no decided (non-tie) pairs to evaluate on.")
        chosen, rejected = self.rewards_for_pairs(decided)
        return pairwise_metrics(chosen, rejected)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or a training output directory whose final checkpoint it means."""
    from training.ml.checkpoints import FINAL_NAME, LATEST_FILE, is_complete

    path = Path(path)
    if not path.is_dir():
        raise ScoringError(f"{path} is not a directory.")
    if is_complete(path):
        return path
    if is_complete(path / FINAL_NAME):
        return path / FINAL_NAME
    pointer = path / LATEST_FILE
    if pointer.is_file() and is_complete(path / pointer.read_text().strip()):
        return path / pointer.read_text().strip()
    raise ScoringError(f"{path} holds no complete checkpoint (no checkpoint.json marked complete).")


def _check_input(prompt: Any, responses: Any) -> None:
    if isinstance(responses, str):
        raise ScoringError("responses must be a list of strings, not one string.")
    if not all(isinstance(text, str) for text in responses):
        raise ScoringError("Every response must be a string.")
    _check_prompt(prompt)


def _check_prompt(prompt: Any) -> None:
    if isinstance(prompt, str):
        return
    if isinstance(prompt, list) and all(
        isinstance(turn, dict) and isinstance(turn.get("role"), str) and isinstance(turn.get("content"), str)
        for turn in prompt
    ):
        return
    raise ScoringError("prompt must be text or a list of {role, content} turns.")

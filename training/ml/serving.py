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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.ml.data import Message, PreferenceExample
from training.ml.generation import pick_device

# (prompt, a, b): one comparison of two replies to a prompt.
Pair = tuple[str | list[Message], str, str]


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
        return self._in_batches(self._tokens_each(prompt, responses), self._rewards).tolist()

    def prob_first_better(self, prompt: str | list[Message], a: str, b: str) -> float:
        """P(a is preferred to b) under the Bradley-Terry model the reward was trained with."""
        return self.probs_first_better([(prompt, a, b)])[0]

    def probs_first_better(self, pairs: Sequence[Pair]) -> list[float]:
        """P(a is preferred to b) for each (prompt, a, b), all pairs batched together (one forward
        pass per `batch_size` sequences, not per pair); each pair is tokenised by the training rule,
        so both replies are judged on the same cut of a long prompt."""
        if not pairs:
            return []
        a, b = self._tokens_of_pairs(pairs)
        rewards = self._in_batches(a + b, self._rewards).double()  # (2N,)
        return torch.sigmoid(rewards[: len(a)] - rewards[len(a) :]).tolist()

    def pooled(self, prompt: str | list[Message], responses: Sequence[str]) -> np.ndarray:
        """The vectors the reward head sees for each response to `prompt`, (N, H) float64, in the
        order given: ``reward = pooled @ head_weight + bias``. Active learning's Laplace posterior
        lives on this last layer (training.ml.acquisition)."""
        _check_input(prompt, responses)
        if not responses:
            return np.zeros((0, self.model.head.in_features))
        return self._in_batches(self._tokens_each(prompt, responses), self._pooled).numpy()

    def pooled_pairs(self, pairs: Sequence[Pair]) -> np.ndarray:
        """The head's input vectors of both replies of each (prompt, a, b), (N, 2, H) float64, all
        pairs batched together and tokenised as `probs_first_better` does."""
        if not pairs:
            return np.zeros((0, 2, self.model.head.in_features))
        a, b = self._tokens_of_pairs(pairs)
        vectors = self._in_batches(a + b, self._pooled)  # (2N, H)
        return torch.stack([vectors[: len(a)], vectors[len(a) :]], dim=1).numpy()

    @property
    def head_weight(self) -> np.ndarray:
        """The reward head's weight vector, (H,) float64 (its bias cancels in any comparison)."""
        return self.model.head.weight.detach().double().cpu().numpy().reshape(-1)

    def rewards_for_pairs(self, examples: Sequence[PreferenceExample]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rewards of chosen and rejected for each pair, (N,) each, truncated by the training rule."""
        from training.ml.tokenization import tokenize_pairs

        model = self.model
        pairs = tokenize_pairs(
            model.tokenizer, list(examples), max_length=model.max_length, is_encoder=model.encoder
        )
        rewards = self._in_batches(pairs.chosen + pairs.rejected, self._rewards)
        return rewards[: len(pairs)], rewards[len(pairs) :]

    def _tokens_each(self, prompt: str | list[Message], responses: Sequence[str]) -> list[list[int]]:
        from training.ml.tokenization import tokenize_scoring

        model = self.model
        return tokenize_scoring(
            model.tokenizer, prompt, list(responses), max_length=model.max_length, is_encoder=model.encoder
        )

    def _tokens_of_pairs(self, pairs: Sequence[Pair]) -> tuple[list[list[int]], list[list[int]]]:
        """Token ids of every a and of every b, the pair's training truncation applied."""
        from training.ml.tokenization import tokenize_pairs

        for pair in pairs:
            if not (isinstance(pair, tuple | list) and len(pair) == 3):
                raise ScoringError("Each pair must be (prompt, a, b).")
            _check_input(pair[0], [pair[1], pair[2]])
        model = self.model
        examples = [PreferenceExample(prompt=prompt, chosen=a, rejected=b) for prompt, a, b in pairs]
        tokens = tokenize_pairs(
            model.tokenizer, examples, max_length=model.max_length, is_encoder=model.encoder
        )
        return tokens.chosen, tokens.rejected

    def _rewards(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, mask).float()  # (n,)

    def _pooled(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.pooled(mask, input_ids=input_ids).double()  # (n, H)

    @torch.inference_mode()
    def _in_batches(self, sequences: Sequence[Sequence[int]], forward) -> torch.Tensor:
        """`forward(input_ids, mask)` over batches of similar lengths (less padding), its rows
        returned on the CPU in the order of `sequences`: (N,) or (N, H)."""
        from training.ml.reward import pad_batch

        if not sequences:
            return torch.empty(0)
        pad_id = self.model.tokenizer.pad_token_id or 0
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        parts = []
        for start in range(0, len(order), self.batch_size):
            ids, mask = pad_batch([sequences[i] for i in order[start : start + self.batch_size]], pad_id)
            parts.append(forward(ids.to(self.device), mask.to(self.device)).cpu())
        sorted_rows = torch.cat(parts)
        rows = torch.empty_like(sorted_rows)
        rows[order] = sorted_rows
        return rows

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

"""Parts of trainer.Task that the preference tasks (reward, DPO, contrastive) implement alike.

A task mixes in what fits it and overrides the rest; each part names the attributes it reads.
"""

from __future__ import annotations

from torch import Tensor, nn

from . import backbone as bb


def eval_batches(cfg, n: int, *, lengths: list[int] | None = None) -> list[list[int]]:
    """Index batches for scoring without gradients: cfg.eval_batch_size each (0: twice the training
    batch, as no gradients are kept), shortest first when lengths are given (less padding)."""
    size = cfg.eval_batch_size or 2 * cfg.batch_size
    order = sorted(range(n), key=lengths.__getitem__) if lengths is not None else list(range(n))
    return [order[start : start + size] for start in range(0, n, size)]


class PairSetData:
    """Sizes of `self.train` / `self.eval`, tokenised pair sets with `lengths()` (eval may be None)."""

    def train_size(self) -> int:
        return len(self.train)

    def train_lengths(self) -> list[int]:
        return self.train.lengths()

    def has_eval(self) -> bool:
        return bool(self.eval and len(self.eval))

    def prepare(self, device) -> None:
        pass


class AdapterWeights:
    """Checkpoint weights of `self.model`, which carries LoRA adapters when `self.peft` is set.

    Intermediate checkpoints hold the trainable tensors only; the final one merges the adapters in,
    so a served or resumed-from model is a plain one. `_adopt_merged` says where the merged model goes.
    """

    model: nn.Module

    def _adopt_merged(self, merged: nn.Module) -> None:
        raise NotImplementedError

    def weights(self, *, final: bool) -> dict[str, Tensor]:
        if self.peft is None:
            return self.model.state_dict()
        if final:
            self._adopt_merged(self.peft.merge_and_unload())
            self.peft = None
            return self.model.state_dict()
        return bb.trainable_state(self.model)

    def load_weights(self, tensors: dict[str, Tensor]) -> None:
        if self.peft is None:
            self.model.load_state_dict(tensors, strict=True)
        else:
            bb.load_partial_state(self.model, tensors)

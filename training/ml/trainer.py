"""The training loop shared by every method: AdamW, warmup + decay, accumulation, clipping, evaluation,
early stopping, callbacks, atomic checkpoints and exact resume, and DDP under torchrun.

A method plugs in as a `Task` (reward.RewardTask, policy.DPOTask, contrastive.ContrastiveTask): it owns
the model, the pre-tokenised data, how a batch becomes a loss, and how to evaluate.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from . import checkpoints as ck
from .config import ConfigError, TrainingConfig

OnLog = Callable[[dict[str, Any]], bool | None]


@dataclass
class TrainingResult:
    checkpoint_dir: Path
    steps: int
    metrics: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False


class Task(Protocol):
    kind: str
    model: nn.Module  # what is saved and optimised
    module: nn.Module  # what forward passes go through (DDP wraps this one)
    default_metric: str
    greater_is_better: bool

    def train_size(self) -> int: ...
    def train_lengths(self) -> list[int]: ...
    def has_eval(self) -> bool: ...
    def prepare(self, device: torch.device) -> None: ...
    def batch(self, indices: list[int], device: torch.device) -> dict[str, Tensor]: ...
    def loss(self, module: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]: ...
    def evaluate(self, device: torch.device, autocast: Callable[[], Any]) -> dict[str, float]: ...
    def weights(self, *, final: bool) -> dict[str, Tensor]: ...
    def load_weights(self, tensors: dict[str, Tensor]) -> None: ...
    def save_files(self, directory: Path) -> None: ...
    def meta(self) -> dict[str, Any]: ...


# ----------------------------------------------------------------------------------------- helpers


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was asked for but CUDA is not available.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device='mps' was asked for but MPS is not available.")
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


def autocast_factory(cfg: TrainingConfig, device: torch.device) -> Callable[[], Any]:
    if cfg.precision == "bf16" and device.type != "cuda":
        raise ConfigError("precision='bf16' needs CUDA; on CPU and MPS training runs in fp32.")
    if device.type == "cuda" and cfg.precision in ("auto", "bf16"):
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def global_batches(
    n: int, batch_size: int, *, seed: int, epoch: int, lengths: list[int] | None
) -> list[list[int]]:
    """One epoch's batches of indices, the same on every process.

    With `lengths`, indices are shuffled, cut into mega-batches of 50 batches, each sorted by length
    (so a batch holds pairs of similar length and pads little), and the batch order is shuffled.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    if lengths is None:
        return [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    mega = batch_size * 50
    batches = []
    for start in range(0, n, mega):
        chunk = sorted(perm[start : start + mega], key=lambda i: -lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    order = torch.randperm(len(batches), generator=g).tolist()
    return [batches[i] for i in order]


def lr_lambda(cfg: TrainingConfig, total_steps: int) -> Callable[[int], float]:
    warmup = math.ceil(cfg.warmup_ratio * total_steps)

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if cfg.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return max(0.0, 1 - progress)

    return f


def make_optimizer(model: nn.Module, cfg: TrainingConfig, device: torch.device) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(
        groups,
        lr=cfg.lr,
        betas=(cfg.adam_beta1, cfg.adam_beta2),
        eps=cfg.adam_eps,
        # One fused kernel per step instead of a loop over tensors (TRL's default optimiser is fused too).
        fused=True if device.type in ("cpu", "cuda") else None,
    )


# Metrics that fall as a model improves; every other one (accuracy, margin, ...) rises.
LOWER_IS_BETTER = ("loss", "ece")


def greater_is_better(metric: str, task: Task) -> bool:
    """The direction early stopping watches `metric` in: the task's own for its default metric."""
    if metric == task.default_metric:
        return task.greater_is_better
    return not any(metric == name or metric.endswith(f"_{name}") for name in LOWER_IS_BETTER)


def _improved(value: float, best: float | None, greater: bool) -> bool:
    if best is None:
        return not math.isnan(value)
    return value > best if greater else value < best


# -------------------------------------------------------------------------------------------- loop


class Trainer:
    def __init__(
        self,
        task: Task,
        cfg: TrainingConfig,
        *,
        output_dir: Path,
        on_log: OnLog | None = None,
        lineage: dict[str, Any] | None = None,
        data_stats: dict[str, Any] | None = None,
    ):
        self.task, self.cfg = task, cfg
        self.output_dir = Path(output_dir)
        self.on_log = on_log
        self.lineage = dict(lineage or {})
        self.data_stats = dict(data_stats or {})
        self._checkpointed_best_step: int | None = None  # the best copy the newest step checkpoint names
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = pick_device(cfg.device)
        self.autocast = autocast_factory(cfg, self.device)

    # ---- distributed
    def _init_distributed(self) -> None:
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)

    def _any(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0])
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def _barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def _emit(self, event: dict[str, Any]) -> bool:
        if self.rank != 0 or self.on_log is None:
            return False
        return bool(self.on_log(event))

    # ---- checkpoints
    def _meta(self, step: int, total: int, metrics: dict[str, Any], *, final: bool) -> dict[str, Any]:
        return {
            "kind": self.task.kind,
            "step": step,
            "total_steps": total,
            "final": final,
            "metrics": metrics,
            "lineage": self.lineage,
            "base_model": self.cfg.model,
            "data": self.data_stats,
            "format": 1,
            **self.task.meta(),
        }

    def _save(
        self,
        name: str,
        step: int,
        total: int,
        metrics: dict[str, Any],
        state: dict[str, Any],
        optimizer,
        scheduler,
        *,
        final: bool,
    ) -> Path:
        path = self.output_dir / name
        if self.rank == 0:

            def fill(d: Path) -> None:
                ck.save_tensors(d / "model.safetensors", self.task.weights(final=final))
                self.task.save_files(d)
                ck.write_json(d / "config.json", self.cfg.to_dict())
                if not final:
                    ck.save_optimizer(d, optimizer)
                    rng_tensors, rng_json = ck.rng_state()
                    save_file(rng_tensors, str(d / "rng.safetensors"))
                    ck.write_json(
                        d / "trainer_state.json",
                        {**state, "rng": rng_json, "scheduler": _scheduler_state(scheduler)},
                    )

            path = ck.write_checkpoint(
                self.output_dir, name, fill, self._meta(step, total, metrics, final=final)
            )
            if not final:  # the best copy this checkpoint names must outlive the ones after it
                self._checkpointed_best_step = state.get("best_step")
                ck.prune_best(self.output_dir, {self._checkpointed_best_step})
            # Once the final checkpoint exists nothing resumes from step checkpoints: free their space.
            ck.prune_step_checkpoints(self.output_dir, 0 if final else max(1, self.cfg.keep_checkpoints))
            self._emit({"event": "checkpoint", "step": step, "total_steps": total, "path": str(path)})
        self._barrier()
        return path

    def _save_best(self, step: int, total: int, metrics: dict[str, Any]) -> None:
        """Keep the weights of the best evaluation so far in `best-<step>/` (no optimizer: never
        resumed from), so that early stopping can end on them. The copy the newest step checkpoint
        names is kept too, so a resume finds the best of the steps it did not redo."""
        if self.rank == 0:

            def fill(d: Path) -> None:
                ck.save_tensors(d / "model.safetensors", self.task.weights(final=False))

            meta = self._meta(step, total, metrics, final=False)
            ck.write_checkpoint(self.output_dir, ck.best_name(step), fill, meta, latest=False)
            ck.prune_best(self.output_dir, {step, self._checkpointed_best_step})
        self._barrier()

    def _restore_best(self, step: int) -> dict[str, Any] | None:
        """Load the weights of the best evaluation, at `step`, back into the model; returns that
        evaluation's metrics with `best_step`, or None (weights unchanged) if its copy is gone."""
        best = self.output_dir / ck.best_name(step)
        if not ck.is_complete(best):
            return None
        self.task.load_weights(ck.load_tensors(best / "model.safetensors"))
        return {**ck.read_meta(best)["metrics"], "best_step": step}

    def _resume(self, optimizer, scheduler) -> tuple[int, dict[str, Any]] | TrainingResult | None:
        latest = ck.latest_checkpoint(self.output_dir)
        if latest is None:
            return None
        meta = ck.read_meta(latest)
        saved_cfg = ck.read_json(latest / "config.json")
        if meta.get("kind") != self.task.kind or saved_cfg != self.cfg.to_dict():
            raise ConfigError(
                f"{self.output_dir} already holds a checkpoint of a different run "
                f"({meta.get('kind')}, another config); use a fresh output directory."
            )
        if meta.get("final"):
            return TrainingResult(latest, int(meta["step"]), meta.get("metrics", {}), stopped=False)
        self.task.load_weights(ck.load_tensors(latest / "model.safetensors"))
        ck.load_optimizer(latest, optimizer)
        state = ck.read_json(latest / "trainer_state.json")
        sched = state.pop("scheduler")
        sched["lr_lambdas"] = [None] * len(optimizer.param_groups)
        scheduler.load_state_dict(sched)
        ck.set_rng_state(load_file(str(latest / "rng.safetensors")), state.pop("rng"))
        return int(meta["step"]), state

    # ---- the loop
    def run(self) -> TrainingResult:
        cfg, task = self.cfg, self.task
        self._init_distributed()
        if self.rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            ck.remove_stale_temp(self.output_dir)
        self._barrier()
        task.model.to(self.device)
        task.prepare(self.device)
        n = task.train_size()
        if n == 0:
            raise ValueError("No training pairs left (after excluding ties); nothing to train on.")
        global_bs = cfg.batch_size * self.world
        lengths = task.train_lengths() if cfg.group_by_length else None
        # Every process needs at least one pair per micro-batch: a last batch smaller than the number
        # of processes is skipped (with one process nothing is ever skipped).
        micro_per_epoch = n // global_bs + (1 if n % global_bs >= self.world else 0)
        if micro_per_epoch == 0:
            raise ValueError(f"{n} training pairs cannot be shared among {self.world} processes.")
        steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
        total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))

        optimizer = make_optimizer(task.model, cfg, self.device)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total))
        resumed = self._resume(optimizer, scheduler)
        if isinstance(resumed, TrainingResult):
            return resumed
        step, state = resumed if resumed else (0, {})
        best: float | None = state.get("best")
        bad_evals: int = state.get("bad_evals", 0)
        best_step: int | None = state.get("best_step")
        self._checkpointed_best_step = best_step
        if self.rank == 0:  # copies from an attempt that died after this checkpoint are not ours
            ck.prune_best(self.output_dir, {best_step})
        metrics: dict[str, Any] = state.get("metrics", {})
        metric_name = cfg.early_stopping_metric or task.default_metric
        greater = greater_is_better(metric_name, task)

        module = task.module
        if self.world > 1:
            module = nn.parallel.DistributedDataParallel(module, device_ids=None)
        params = [p for p in task.model.parameters() if p.requires_grad]
        epoch_cache: dict[int, list[list[int]]] = {}
        started, start_step = time.monotonic(), step
        stopped = early = False
        task.module.train()
        while step < total and not (stopped or early):
            epoch = step // steps_per_epoch
            if epoch not in epoch_cache:
                epoch_cache.clear()
                batches = global_batches(n, global_bs, seed=cfg.seed, epoch=epoch, lengths=lengths)
                epoch_cache[epoch] = [b for b in batches if len(b) >= self.world]
            batches = epoch_cache[epoch]
            first = (step % steps_per_epoch) * cfg.grad_accum
            micro = batches[first : first + cfg.grad_accum]
            loss_sum, stats_sum = 0.0, {}
            for i, global_idx in enumerate(micro):
                shard = global_idx[self.rank :: self.world]
                batch = task.batch(shard, self.device)
                sync = module.no_sync if self.world > 1 and i < len(micro) - 1 else contextlib.nullcontext
                with sync(), self.autocast():
                    loss, stats = task.loss(module, batch)
                    (loss / len(micro)).backward()
                loss_sum += loss.detach().item() / len(micro)
                for k, v in stats.items():
                    stats_sum[k] = stats_sum.get(k, 0.0) + v / len(micro)
            grad_norm = (
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm).item()
                if cfg.max_grad_norm > 0
                else float("nan")
            )
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if self.world > 1:
                t = torch.tensor([loss_sum])
                torch.distributed.all_reduce(t)
                loss_sum = t.item() / self.world
            done_here = step - start_step
            eta = (time.monotonic() - started) / done_here * (total - step)
            want_stop = self._emit(
                {
                    "event": "step",
                    "step": step,
                    "total_steps": total,
                    "epoch": step / steps_per_epoch,
                    "loss": loss_sum,
                    "lr": scheduler.get_last_lr()[0],
                    "grad_norm": grad_norm,
                    "metrics": stats_sum,
                    "eta_seconds": eta,
                }
            )
            if cfg.eval_every and step % cfg.eval_every == 0 and step < total and task.has_eval():
                metrics = self._evaluate(step, total, steps_per_epoch)
                want_stop = self._emit_eval(step, total, steps_per_epoch, metrics) or want_stop
                improved = False
                if cfg.early_stopping_patience and self.rank == 0:
                    value = float(metrics.get(metric_name, float("nan")))
                    if _improved(value, best, greater):
                        best, bad_evals, improved = value, 0, True
                    else:
                        bad_evals += 1
                        early = bad_evals >= cfg.early_stopping_patience
                if self._any(improved):  # every rank learns the best step
                    best_step = step
                    self._save_best(step, total, metrics)
                task.module.train()
            early = self._any(early)
            stopped = self._any(want_stop) and step < total
            state = {
                "step": step,
                "best": best,
                "best_step": best_step,
                "bad_evals": bad_evals,
                "metrics": metrics,
            }
            if stopped:
                path = self._save(
                    ck.step_name(step), step, total, metrics, state, optimizer, scheduler, final=False
                )
                self._emit(
                    {"event": "done", "step": step, "total_steps": total, "stopped": True, "metrics": metrics}
                )
                return TrainingResult(path, step, self._final_metrics(metrics), stopped=True)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total:
                self._save(ck.step_name(step), step, total, metrics, state, optimizer, scheduler, final=False)

        if task.has_eval():
            metrics = self._evaluate(step, total, steps_per_epoch)
            self._emit_eval(step, total, steps_per_epoch, metrics)
            # With early stopping the run ends on its best evaluated weights, the last ones included.
            value = float(metrics.get(metric_name, float("nan")))
            best_beats_last = (
                self.rank == 0
                and best_step is not None
                and (math.isnan(value) or _improved(best, value, greater))
            )
            if cfg.early_stopping_patience and self._any(best_beats_last):
                metrics = self._restore_best(best_step) or {**metrics, "best_weights_missing_step": best_step}
        metrics = self._final_metrics(metrics)
        if early:
            metrics["early_stopped"] = True
        path = self._save(ck.FINAL_NAME, step, total, metrics, {}, optimizer, scheduler, final=True)
        if self.rank == 0:
            ck.prune_best(self.output_dir, set())
        self._emit(
            {"event": "done", "step": step, "total_steps": total, "stopped": False, "metrics": metrics}
        )
        return TrainingResult(path, step, metrics, stopped=False)

    def _final_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {**metrics, **{f"train_{k}": v for k, v in self.data_stats.items()}}

    def _evaluate(self, step: int, total: int, steps_per_epoch: int) -> dict[str, Any]:
        if self.rank != 0:
            return {}
        self.task.module.eval()
        return self.task.evaluate(self.device, self.autocast)

    def _emit_eval(self, step: int, total: int, steps_per_epoch: int, metrics: dict[str, Any]) -> bool:
        return self._emit(
            {
                "event": "eval",
                "step": step,
                "total_steps": total,
                "epoch": step / steps_per_epoch,
                "metrics": metrics,
            }
        )


def _scheduler_state(scheduler) -> dict[str, Any]:
    # LambdaLR keeps its lambdas in the state dict; they are rebuilt from the config, not stored.
    return {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}

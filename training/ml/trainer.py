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


@dataclass
class _Schedule:
    """Which pairs each optimiser step trains on: the same on every process, and the same for a
    resumed run as for an uninterrupted one."""

    pairs: int
    lengths: list[int] | None  # per pair, when batches are grouped by length
    global_batch: int  # pairs per micro-batch, over all processes
    world: int
    grad_accum: int
    seed: int
    steps_per_epoch: int
    total: int
    _epoch: tuple[int, list[list[int]]] | None = field(default=None, init=False, repr=False)  # cached

    @classmethod
    def plan(cls, cfg: TrainingConfig, task: Task, world: int) -> _Schedule:
        n = task.train_size()
        if n == 0:
            raise ValueError("No training pairs left (after excluding ties); nothing to train on.")
        global_batch = cfg.batch_size * world
        lengths = task.train_lengths() if cfg.group_by_length else None
        # Every process needs at least one pair per micro-batch: a last batch smaller than the number
        # of processes is skipped (with one process nothing is ever skipped).
        micro_per_epoch = n // global_batch + (1 if n % global_batch >= world else 0)
        if micro_per_epoch == 0:
            raise ValueError(f"{n} training pairs cannot be shared among {world} processes.")
        steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
        total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
        return cls(n, lengths, global_batch, world, cfg.grad_accum, cfg.seed, steps_per_epoch, total)

    def micro_batches(self, step: int) -> list[list[int]]:
        """The global micro-batches (indices over all processes) that step `step` accumulates."""
        epoch = step // self.steps_per_epoch
        if self._epoch is None or self._epoch[0] != epoch:
            batches = global_batches(
                self.pairs, self.global_batch, seed=self.seed, epoch=epoch, lengths=self.lengths
            )
            self._epoch = (epoch, [b for b in batches if len(b) >= self.world])
        first = (step % self.steps_per_epoch) * self.grad_accum
        return self._epoch[1][first : first + self.grad_accum]

    def epoch(self, step: int) -> float:
        return step / self.steps_per_epoch


@dataclass
class _Progress:
    """Where a run stands: what a step checkpoint stores and a resume restores."""

    step: int = 0
    best: float | None = None  # the best value of the watched metric so far (known on rank 0)
    best_step: int | None = None  # the step of that evaluation, whose weights are in best-<step>/
    bad_evals: int = 0  # evaluations since the last improvement
    metrics: dict[str, Any] = field(default_factory=dict)  # the latest evaluation's

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "best": self.best,
            "best_step": self.best_step,
            "bad_evals": self.bad_evals,
            "metrics": self.metrics,
        }


@dataclass
class _Optimisation:
    """What an optimiser step works on."""

    module: nn.Module  # what forward passes go through: the task's module, in DDP on several processes
    params: list[nn.Parameter]  # the trainable ones, whose gradient norm is clipped
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR


@dataclass
class _StepResult:
    loss: float  # the mean over the step's micro-batches and over all processes
    stats: dict[str, float]  # the task's batch statistics, averaged over this process's micro-batches
    grad_norm: float  # before clipping; nan when clipping is off
    lr: float  # the learning rate the next step will use


class _Eta:
    """Seconds left, at the pace of the steps this process has run (a resumed run's earlier steps
    were timed by another)."""

    def __init__(self, step: int):
        self.started, self.start_step = time.monotonic(), step

    def __call__(self, step: int, total: int) -> float:
        return (time.monotonic() - self.started) / (step - self.start_step) * (total - step)


class Trainer:
    """Trains one Task under one config into `output_dir`: resumes from the newest complete
    checkpoint there, reports through `on_log`, and ends with a `final/` checkpoint (or a step
    checkpoint when on_log asks it to stop)."""

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
        self.watched = cfg.early_stopping_metric or task.default_metric  # what early stopping watches
        self.greater = greater_is_better(self.watched, task)

    # ---- the loop
    def run(self) -> TrainingResult:
        self._init_distributed()
        schedule = self._prepare()
        opt = self._optimisation(schedule.total)
        progress = self._resume(opt)
        if isinstance(progress, TrainingResult):
            return progress  # this directory holds a finished run
        if self.world > 1:  # after the resume: DDP broadcasts rank 0's weights as it wraps them
            opt.module = nn.parallel.DistributedDataParallel(opt.module, device_ids=None)
        eta, early = _Eta(progress.step), False
        self.task.module.train()
        while progress.step < schedule.total and not early:
            result = self._optimiser_step(opt, schedule.micro_batches(progress.step))
            progress.step += 1
            want_stop = self._emit_step(progress.step, schedule, result, eta(progress.step, schedule.total))
            if self._due(self.cfg.eval_every, progress.step, schedule) and self.task.has_eval():
                eval_wants_stop, early = self._evaluate_and_watch(progress, schedule)
                want_stop = eval_wants_stop or want_stop
            early = self._any(early)
            if self._any(want_stop) and progress.step < schedule.total:
                return self._stop(progress, schedule, opt)
            if self._due(self.cfg.checkpoint_every, progress.step, schedule):
                self._save_step(progress, schedule, opt)
        return self._finish(progress, schedule, opt, early=early)

    def _prepare(self) -> _Schedule:
        if self.rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            ck.remove_stale_temp(self.output_dir)
        self._barrier()
        self.task.model.to(self.device)
        self.task.prepare(self.device)
        return _Schedule.plan(self.cfg, self.task, self.world)

    def _optimisation(self, total: int) -> _Optimisation:
        optimizer = make_optimizer(self.task.model, self.cfg, self.device)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(self.cfg, total))
        params = [p for p in self.task.model.parameters() if p.requires_grad]
        return _Optimisation(self.task.module, params, optimizer, scheduler)

    @staticmethod
    def _due(every: int, step: int, schedule: _Schedule) -> bool:
        """Whether a periodic evaluation or checkpoint falls on `step`; the last step has its own."""
        return bool(every) and step % every == 0 and step < schedule.total

    def _optimiser_step(self, opt: _Optimisation, micro: list[list[int]]) -> _StepResult:
        """Forward and backward over one step's micro-batches, each process on its shard, then clip,
        step and advance the schedule."""
        loss_sum, stats_sum = 0.0, {}
        for i, global_idx in enumerate(micro):
            shard = global_idx[self.rank :: self.world]
            batch = self.task.batch(shard, self.device)
            # DDP all-reduces gradients on the last micro-batch of the step only.
            sync = opt.module.no_sync if self.world > 1 and i < len(micro) - 1 else contextlib.nullcontext
            with sync(), self.autocast():
                loss, stats = self.task.loss(opt.module, batch)
                (loss / len(micro)).backward()
            loss_sum += loss.detach().item() / len(micro)
            for k, v in stats.items():
                stats_sum[k] = stats_sum.get(k, 0.0) + v / len(micro)
        grad_norm = (
            torch.nn.utils.clip_grad_norm_(opt.params, self.cfg.max_grad_norm).item()
            if self.cfg.max_grad_norm > 0
            else float("nan")
        )
        opt.optimizer.step()
        opt.scheduler.step()
        opt.optimizer.zero_grad(set_to_none=True)
        if self.world > 1:
            t = torch.tensor([loss_sum], device=self.device)  # NCCL refuses CPU tensors
            torch.distributed.all_reduce(t)
            loss_sum = t.item() / self.world
        return _StepResult(loss_sum, stats_sum, grad_norm, opt.scheduler.get_last_lr()[0])

    def _evaluate_and_watch(self, progress: _Progress, schedule: _Schedule) -> tuple[bool, bool]:
        """A mid-run evaluation: report it and, with early stopping, count it against patience and
        keep the weights if they are the best so far. Returns whether on_log asked to stop and
        whether patience ran out (decided on rank 0; the caller shares it)."""
        progress.metrics = self._evaluate()
        want_stop = self._emit_eval(progress.step, schedule, progress.metrics)
        improved = out_of_patience = False
        if self.cfg.early_stopping_patience and self.rank == 0:
            value = float(progress.metrics.get(self.watched, float("nan")))
            if _improved(value, progress.best, self.greater):
                progress.best, progress.bad_evals, improved = value, 0, True
            else:
                progress.bad_evals += 1
                out_of_patience = progress.bad_evals >= self.cfg.early_stopping_patience
        if self._any(improved):  # every rank learns the best step
            progress.best_step = progress.step
            self._save_best(progress.step, schedule.total, progress.metrics)
        self.task.module.train()
        return want_stop, out_of_patience

    def _stop(self, progress: _Progress, schedule: _Schedule, opt: _Optimisation) -> TrainingResult:
        """End a run that on_log asked to stop, with a checkpoint a later run resumes from exactly."""
        path = self._save_step(progress, schedule, opt)
        self._emit_done(progress.step, schedule, progress.metrics, stopped=True)
        return TrainingResult(path, progress.step, self._final_metrics(progress.metrics), stopped=True)

    def _finish(
        self, progress: _Progress, schedule: _Schedule, opt: _Optimisation, *, early: bool
    ) -> TrainingResult:
        metrics = self._final_evaluation(progress, schedule) if self.task.has_eval() else progress.metrics
        metrics = self._final_metrics(metrics)
        if early:
            metrics["early_stopped"] = True
        path = self._save(ck.FINAL_NAME, progress.step, schedule.total, metrics, {}, opt, final=True)
        if self.rank == 0:
            ck.prune_best(self.output_dir, set())
        self._emit_done(progress.step, schedule, metrics, stopped=False)
        return TrainingResult(path, progress.step, metrics, stopped=False)

    def _final_evaluation(self, progress: _Progress, schedule: _Schedule) -> dict[str, Any]:
        """Evaluate the last weights; with early stopping the run ends on its best evaluated weights,
        the last ones included, so an earlier best is loaded back."""
        metrics = self._evaluate()
        self._emit_eval(progress.step, schedule, metrics)
        value = float(metrics.get(self.watched, float("nan")))
        best_beats_last = (
            self.rank == 0
            and progress.best_step is not None
            and (math.isnan(value) or _improved(progress.best, value, self.greater))
        )
        if self.cfg.early_stopping_patience and self._any(best_beats_last):
            best_step = progress.best_step
            return self._restore_best(best_step) or {**metrics, "best_weights_missing_step": best_step}
        return metrics

    def _final_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {**metrics, **{f"train_{k}": v for k, v in self.data_stats.items()}}

    def _evaluate(self) -> dict[str, Any]:
        if self.rank != 0:
            return {}
        self.task.module.eval()
        return self.task.evaluate(self.device, self.autocast)

    # ---- callbacks
    def _emit(self, event: dict[str, Any]) -> bool:
        """Send `event` to on_log (on rank 0 only); returns whether on_log asked to stop."""
        if self.rank != 0 or self.on_log is None:
            return False
        return bool(self.on_log(event))

    def _emit_step(self, step: int, schedule: _Schedule, result: _StepResult, eta: float) -> bool:
        return self._emit(
            {
                "event": "step",
                "step": step,
                "total_steps": schedule.total,
                "epoch": schedule.epoch(step),
                "loss": result.loss,
                "lr": result.lr,
                "grad_norm": result.grad_norm,
                "metrics": result.stats,
                "eta_seconds": eta,
            }
        )

    def _emit_eval(self, step: int, schedule: _Schedule, metrics: dict[str, Any]) -> bool:
        return self._emit(
            {
                "event": "eval",
                "step": step,
                "total_steps": schedule.total,
                "epoch": schedule.epoch(step),
                "metrics": metrics,
            }
        )

    def _emit_done(self, step: int, schedule: _Schedule, metrics: dict[str, Any], *, stopped: bool) -> None:
        event = {"event": "done", "step": step, "total_steps": schedule.total, "stopped": stopped}
        self._emit({**event, "metrics": metrics})

    # ---- distributed
    def _init_distributed(self) -> None:
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            if self.device.type == "cuda":  # NCCL's collectives and barrier use the current device
                torch.cuda.set_device(self.device)
            torch.distributed.init_process_group(backend=backend)

    def _any(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)  # NCCL refuses CPU tensors
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def _barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

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

    def _save_step(self, progress: _Progress, schedule: _Schedule, opt: _Optimisation) -> Path:
        name = ck.step_name(progress.step)
        return self._save(
            name, progress.step, schedule.total, progress.metrics, progress.state(), opt, final=False
        )

    def _save(
        self,
        name: str,
        step: int,
        total: int,
        metrics: dict[str, Any],
        state: dict[str, Any],
        opt: _Optimisation,
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
                    ck.save_optimizer(d, opt.optimizer)
                    rng_tensors, rng_json = ck.rng_state()
                    save_file(rng_tensors, str(d / "rng.safetensors"))
                    ck.write_json(
                        d / "trainer_state.json",
                        {**state, "rng": rng_json, "scheduler": _scheduler_state(opt.scheduler)},
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

    def _resume(self, opt: _Optimisation) -> _Progress | TrainingResult:
        """Where this run starts: afresh, from the newest step checkpoint in the output directory, or,
        if that directory holds a finished run, nowhere (its result is returned)."""
        latest = ck.latest_checkpoint(self.output_dir)
        progress = _Progress() if latest is None else self._restore(latest, opt)
        if isinstance(progress, TrainingResult):
            return progress
        self._checkpointed_best_step = progress.best_step
        if self.rank == 0:  # copies from an attempt that died after this checkpoint are not ours
            ck.prune_best(self.output_dir, {progress.best_step})
        return progress

    def _restore(self, latest: Path, opt: _Optimisation) -> _Progress | TrainingResult:
        """Load weights, optimiser, schedule and RNG from `latest`, so that the run goes on exactly as
        if it had never stopped."""
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
        ck.load_optimizer(latest, opt.optimizer)
        state = ck.read_json(latest / "trainer_state.json")
        sched = state.pop("scheduler")
        sched["lr_lambdas"] = [None] * len(opt.optimizer.param_groups)
        opt.scheduler.load_state_dict(sched)
        ck.set_rng_state(load_file(str(latest / "rng.safetensors")), state.pop("rng"))
        return _Progress(
            step=int(meta["step"]),
            best=state.get("best"),
            best_step=state.get("best_step"),
            bad_evals=state.get("bad_evals", 0),
            metrics=state.get("metrics", {}),
        )


def _scheduler_state(scheduler) -> dict[str, Any]:
    # LambdaLR keeps its lambdas in the state dict; they are rebuilt from the config, not stored.
    return {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}

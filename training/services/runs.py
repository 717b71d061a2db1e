"""Training runs: create, claim, report progress, finish, cancel, and recover from dead workers.

A run is a leased job (``alignweb.jobs``, as ``RUNS``): a worker owns a running run while
``worker_id`` holds its id (fresh per claim, so it also fences off a previous attempt of the same
process). Every write a worker makes goes through ``RUNS.owned``, filtered on its id and
``state=running``; when it matches no row the worker has lost the run (it was reaped as stale, or
cancelled) and must stop.
"""

import math
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from alignweb.heartbeat import Heartbeat
from alignweb.jobs import DEFAULT_MAX_ATTEMPTS, Lifecycle
from alignweb.named_tasks import named_task
from annotation.models import Project
from annotation.services.errors import Conflict, ValidationFailed
from training.models import (
    ACTIVE_RUN_STATES,
    RL_RUN_KINDS,
    ModelKind,
    ModelVersion,
    RunMetric,
    RunState,
    TrainingRun,
)
from training.services.configs import run_config_validate
from training.services.evaluations import evaluations_queue_for_version
from training.services.registry import (
    RUN_KIND_TO_MODEL_KIND,
    active_scorer_weights,
    version_for_base_model,
    version_promote_for_run,
    version_register_from_run,
)
from training.services.snapshots import snapshot_create

LOG_TAIL_LINES = 200
train_run = named_task("training.tasks.train_run")


def _enqueue(run_id: int) -> None:
    train_run.delay_on_commit(run_id)


def _requeued(run_id: int, worker_id: str) -> None:
    run_log_any(run_id, f"Worker {worker_id} went silent; re-queued to resume from the last checkpoint.")
    _enqueue(run_id)


RUNS = Lifecycle(TrainingRun, name="run", on_requeue=_requeued)


@transaction.atomic
def run_create(
    *,
    project: Project,
    kind: str,
    config: dict,
    filters: dict | None = None,
    created_by=None,
    base_version: ModelVersion | None = None,
    name: str = "",
    force: bool = False,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    promote_when_done: bool = False,
) -> TrainingRun:
    """Snapshot the votes, store a validated config and enqueue the run after commit. With
    ``promote_when_done``, the version a successful run registers is promoted at once (see
    ``run_finish``).

    An online RL run (rloo, ppo, soft_q) optimises the project's active scorer: the server fills
    ``config["reward_model"]`` with its weights and refuses one given by the caller.

    Raises ValidationFailed (bad kind, config or filters; nothing to train on; an RL run without
    an active scorer, or naming its own reward model) and Conflict (an active run of this kind
    exists in the project and ``force`` is not set).
    """
    if kind in RL_RUN_KINDS and isinstance(config, dict):
        config = {**config, "reward_model": _rl_reward_model(project=project, config=config)}
    normalised = run_config_validate(kind=kind, config=config)
    if base_version is not None and base_version.project_id != project.pk:
        raise ValidationFailed("The base version belongs to another project.", field="base_version")
    if not 1 <= max_attempts <= 20:
        raise ValidationFailed("max_attempts must be from 1 to 20.", field="max_attempts")
    if not force:
        active = TrainingRun.objects.filter(
            project=project, kind=kind, state__in=ACTIVE_RUN_STATES, forced=False
        )
        if active.exists():
            raise Conflict(
                f"Run {active.first().pk} ({kind}) is still active in this project; "
                "cancel it or force a new run.",
                field="kind",
            )
    snapshot = snapshot_create(project=project, filters=filters)
    if base_version is None and RUN_KIND_TO_MODEL_KIND.get(kind) == ModelKind.POLICY:
        # Give the tuned policy a parent, so serving it compares tuned against base responses.
        base_version = version_for_base_model(project=project, base_model=str(normalised.get("model", "")))
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                project=project,
                kind=kind,
                name=name[:200],
                config=normalised,
                snapshot=snapshot,
                base_version=base_version,
                forced=force,
                created_by=created_by,
                max_attempts=max_attempts,
                promote_when_done=promote_when_done,
            )
    except IntegrityError:
        # Another request created an active run of this kind between our check and insert.
        raise Conflict(f"A {kind} run is already active in this project.", field="kind") from None
    run.output_dir = str(Path(settings.ALIGNWEB_CHECKPOINT_DIR) / "runs" / str(run.pk))
    run.save(update_fields=["output_dir"])
    _enqueue(run.pk)
    return run


def _rl_reward_model(*, project: Project, config: dict) -> str:
    """The reward an RL run optimises: always the project's active scorer, chosen here, so a run
    can neither read a path of the caller's choosing nor train against an unvetted model."""
    if config.get("reward_model"):
        raise ValidationFailed(
            "reward_model is chosen by the server (the project's active scorer); leave it out of the config.",
            field="config",
        )
    return active_scorer_weights(project=project)


def run_claim(*, run_id: int, worker_id: str) -> TrainingRun | None:
    """Take a queued run for ``worker_id``, counting the attempt; None when there is nothing to do
    (already running elsewhere, finished, cancelled, or out of attempts — then it is marked failed).
    Safe to call twice: the conditional UPDATE lets exactly one caller win."""
    TrainingRun.objects.filter(pk=run_id, state=RunState.QUEUED, cancel_requested=True).update(
        state=RunState.CANCELLED, finished_at=timezone.now()
    )
    if RUNS.claim(run_id, worker_id=worker_id):
        return TrainingRun.objects.get(pk=run_id)
    return None


def _append_log(tail: str, line: str) -> str:
    lines = (tail.splitlines() if tail else []) + [line]
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _format_event(event: dict) -> str:
    kind = event.get("event", "?")
    parts = [f"[{timezone.now():%H:%M:%S}]"]
    if kind != "step":
        parts.append(str(kind))
    if event.get("step") is not None:
        total = event.get("total_steps")
        parts.append(f"step {event['step']}" + (f"/{total}" if total else ""))
    if event.get("loss") is not None:
        parts.append(f"loss={float(event['loss']):.4f}")
    for key, value in sorted((event.get("metrics") or {}).items()):
        if isinstance(value, int | float):
            parts.append(f"{key}={value:.4g}")
    if event.get("message"):
        parts.append(str(event["message"]))
    return " ".join(parts)


def _numbers(values: dict) -> dict:
    """Finite numbers only: JSON (and PostgreSQL's jsonb) has no NaN or infinity."""
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def run_record_event(*, run_id: int, worker_id: str, event: dict) -> bool:
    """Store one ``on_log`` event of the ML core; return True when training must stop (cancel was
    requested, or this worker no longer owns the run). Also serves as the heartbeat."""
    owned = RUNS.owned(run_id, worker_id=worker_id)
    row = owned.values("cancel_requested", "log_tail").first()
    if row is None:
        return True
    fields: dict = {"log_tail": _append_log(row["log_tail"], _format_event(event))}
    kind = event.get("event")
    step = event.get("step")
    if isinstance(step, int) and step > 0 and kind in ("step", "eval", "checkpoint", "done"):
        fields["step"] = step
    if isinstance(event.get("total_steps"), int):
        fields["total_steps"] = event["total_steps"]
    if isinstance(event.get("eta_seconds"), int | float) and math.isfinite(event["eta_seconds"]):
        fields["eta_seconds"] = float(event["eta_seconds"])
    if kind == "checkpoint" and event.get("path"):
        fields["checkpoint_path"] = str(event["path"])
    with transaction.atomic():
        if not RUNS.beat(run_id, worker_id=worker_id, **fields):
            return True
        if kind in ("step", "eval") and isinstance(step, int):
            values = _numbers(event.get("metrics") or {})
            values.update(_numbers({k: event.get(k) for k in ("loss", "lr", "epoch", "grad_norm")}))
            RunMetric.objects.update_or_create(
                run_id=run_id,
                phase="train" if kind == "step" else "eval",
                step=step,
                defaults={"values": values},
            )
    return bool(row["cancel_requested"])


def run_heartbeat(*, run_id: int, worker_id: str) -> bool:
    """Prove the worker is alive; False when it no longer owns the run."""
    return RUNS.beat(run_id, worker_id=worker_id)


def run_log(*, run_id: int, worker_id: str, message: str) -> None:
    owned = RUNS.owned(run_id, worker_id=worker_id)
    tail = owned.values_list("log_tail", flat=True).first()
    if tail is not None:
        owned.update(log_tail=_append_log(tail, f"[{timezone.now():%H:%M:%S}] {message}"))


@transaction.atomic
def run_finish(
    *, run_id: int, worker_id: str, checkpoint_dir: str, steps: int, metrics: dict, stopped: bool
) -> TrainingRun | None:
    """Record the result of ``run_training``: cancelled when it stopped on request (the last
    checkpoint is kept), succeeded otherwise, registering the checkpoint as a model version, queueing
    its automatic evaluations (a policy's; ``training.services.evaluations``) and promoting it if the
    run asked to be. None when the worker no longer owns the run."""
    run = RUNS.owned(run_id, worker_id=worker_id).select_for_update().first()
    if run is None:
        return None
    run.checkpoint_path = checkpoint_dir
    run.step = steps
    run.heartbeat_at = run.finished_at = timezone.now()
    run.eta_seconds = 0.0
    if stopped and run.cancel_requested:
        run.state = RunState.CANCELLED
        run.log_tail = _append_log(
            run.log_tail, f"Cancelled at step {steps}; checkpoint kept at {checkpoint_dir}."
        )
    elif stopped:
        # Stopped without a cancel request: the worker lost ownership mid-step; leave the run be.
        return None
    else:
        run.state = RunState.SUCCEEDED
        run.log_tail = _append_log(run.log_tail, f"Finished after {steps} steps.")
    run.save()
    if run.state == RunState.SUCCEEDED:
        version = version_register_from_run(run=run, checkpoint_dir=checkpoint_dir, metrics=_numbers(metrics))
        evaluations_queue_for_version(version=version)  # before promotion: against what served until now
        if run.promote_when_done:
            outcome = (
                "Not promoted: a cancel was requested during the last step."
                if run.cancel_requested
                else version_promote_for_run(version=version, created_by=run.created_by)
            )
            run.log_tail = _append_log(run.log_tail, outcome)
            run.save(update_fields=["log_tail"])
    return run


def run_fail(*, run_id: int, worker_id: str, error: str) -> bool:
    """Mark the run failed with ``error``; False when the worker no longer owns it."""
    tail = RUNS.owned(run_id, worker_id=worker_id).values_list("log_tail", flat=True).first()
    if tail is None:
        return False
    first_line = error.strip().splitlines()[-1] if error.strip() else "failed"
    return RUNS.fail(
        run_id,
        worker_id=worker_id,
        error=error,
        log_tail=_append_log(tail, f"[{timezone.now():%H:%M:%S}] failed: {first_line}"),
    )


@transaction.atomic
def run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Cancel a queued run at once, or ask a running one to stop after its current step (the
    training callback sees ``cancel_requested`` and the trainer writes a last checkpoint)."""
    if TrainingRun.objects.filter(pk=run.pk, state=RunState.QUEUED).update(
        state=RunState.CANCELLED, cancel_requested=True, finished_at=timezone.now()
    ):
        return TrainingRun.objects.get(pk=run.pk)
    if TrainingRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(cancel_requested=True):
        return TrainingRun.objects.get(pk=run.pk)
    run.refresh_from_db()
    raise Conflict(f"The run is already {run.get_state_display().lower()}.", field="state")


def runs_reap_stale(*, now=None) -> list[int]:
    """Re-queue running runs whose heartbeat is older than ``stale_after()`` (their worker died);
    they resume from the last checkpoint on the next worker. Runs out of attempts fail instead.
    Returns the ids re-queued."""
    return RUNS.reap_stale(now=now)


def run_log_any(run_id: int, message: str) -> None:
    tail = TrainingRun.objects.filter(pk=run_id).values_list("log_tail", flat=True).first()
    if tail is not None:
        TrainingRun.objects.filter(pk=run_id).update(
            log_tail=_append_log(tail, f"[{timezone.now():%H:%M:%S}] {message}")
        )


def run_heartbeat_thread(*, run_id: int, worker_id: str) -> Heartbeat:
    """Beats for the run while the worker trains, so that a slow step (or model loading) is not
    mistaken for a dead worker."""
    return RUNS.heartbeat(run_id, worker_id=worker_id)

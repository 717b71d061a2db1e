"""Run one claimed training run: the bridge between the ORM and ``training.ml.api.run_training``
(pairwise kinds) or ``training.ml.api.run_rl`` (online RL kinds: rloo, ppo, soft_q).

The ML core is passed in (``train_fn``, ``make_example``, ``rl_fn``) so this module never imports
torch; ``training.tasks.train_run`` passes the real ones, tests pass a small fake that keeps the
same contract (resume from the newest checkpoint in ``output_dir``, stop when ``on_log`` says True).
"""

from collections.abc import Callable
from pathlib import Path

from alignweb.errors import user_error_text
from training.models import RL_RUN_KINDS, RunState, TrainingRun
from training.services import runs
from training.services.registry import run_lineage
from training.services.snapshots import snapshot_examples, snapshot_prompts


class RunLost(Exception):
    """The worker no longer owns the run (it was reaped or cancelled while starting)."""


def run_execute(
    *,
    run_id: int,
    worker_id: str,
    train_fn: Callable,
    make_example: Callable,
    rl_fn: Callable | None = None,
    time_limit_error: type | None = None,
) -> TrainingRun | None:
    """Train the run ``worker_id`` has claimed and record the outcome. Returns the finished run,
    or None when the run was lost to another worker. Online RL kinds go to ``rl_fn`` with the
    training half's prompts (``snapshot_prompts``); every other kind to ``train_fn``."""
    run = TrainingRun.objects.select_related("snapshot", "project", "base_version").get(pk=run_id)
    if run.state != RunState.RUNNING or run.worker_id != worker_id:
        return None
    config = dict(run.config)
    if run.base_version is not None and run.base_version.checkpoint_path:
        # Start from the registered checkpoint (e.g. DPO on top of an earlier tuned policy).
        config["model"] = run.base_version.checkpoint_path
    first_step: list[int] = []

    def on_log(event: dict) -> bool:
        step = event.get("step")
        if event.get("event") == "step" and isinstance(step, int) and not first_step:
            first_step.append(step)
            if step > 1:
                TrainingRun.objects.filter(pk=run_id, worker_id=worker_id).update(resumed_from_step=step - 1)
        return runs.run_record_event(run_id=run_id, worker_id=worker_id, event=event)

    try:
        if run.kind in RL_RUN_KINDS:
            result = _train_online(run=run, worker_id=worker_id, config=config, rl_fn=rl_fn, on_log=on_log)
        else:
            train_rows, eval_rows = snapshot_examples(snapshot=run.snapshot)
            examples = [make_example(**row) for row in train_rows]
            eval_examples = [make_example(**row) for row in eval_rows] or None
            runs.run_log(
                run_id=run_id,
                worker_id=worker_id,
                message=f"Attempt {run.attempts} on {worker_id}: {len(examples)} training and "
                f"{len(eval_rows)} evaluation examples from snapshot {run.snapshot.sha256[:12]}.",
            )
            with runs.run_heartbeat_thread(run_id=run_id, worker_id=worker_id):
                result = train_fn(
                    run.kind,
                    config,
                    examples,
                    output_dir=Path(run.output_dir),
                    on_log=on_log,
                    eval_examples=eval_examples,
                    lineage=run_lineage(run),
                )
    except Exception as error:
        if time_limit_error is not None and isinstance(error, time_limit_error):
            message = "Stopped by the soft time limit; the last checkpoint is kept. "
        else:
            message = ""
        runs.run_fail(run_id=run_id, worker_id=worker_id, error=message + user_error_text(error))
        return TrainingRun.objects.get(pk=run_id)
    return runs.run_finish(
        run_id=run_id,
        worker_id=worker_id,
        checkpoint_dir=str(result.checkpoint_dir),
        steps=int(result.steps),
        metrics=dict(result.metrics or {}),
        stopped=bool(result.stopped),
    )


def _train_online(*, run: TrainingRun, worker_id: str, config: dict, rl_fn: Callable | None, on_log):
    """An RL run: roll out on the training half's prompts against ``config["reward_model"]`` (the
    active scorer ``run_create`` chose), resuming from the newest checkpoint in ``output_dir``."""
    if rl_fn is None:
        raise RuntimeError(f"This worker was started without an online RL trainer for {run.kind}.")
    prompts = snapshot_prompts(snapshot=run.snapshot)
    if not prompts:
        raise ValueError("The snapshot's training half has no prompts to roll out on.")
    runs.run_log(
        run_id=run.pk,
        worker_id=worker_id,
        message=f"Attempt {run.attempts} on {worker_id}: {len(prompts)} training prompts from snapshot "
        f"{run.snapshot.sha256[:12]}, reward from {config.get('reward_model')}.",
    )
    with runs.run_heartbeat_thread(run_id=run.pk, worker_id=worker_id):
        return rl_fn(
            run.kind,
            config,
            prompts,
            output_dir=Path(run.output_dir),
            on_log=on_log,
            lineage=run_lineage(run),
        )

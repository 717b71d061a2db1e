"""Automatic evaluation of policy versions: when a policy run succeeds, its version is scored
against its base and, when another version serves at that moment, against that one too, on the
project's held-back prompts (``training.ml.version_eval``): win rate judged by the project's
active scorer, with a bootstrap 95% interval, the per-token KL to the base and both mean response
lengths. Each evaluation names its judge; human judgement keeps flowing through the tuned-vs-base
comparisons that serving queues and the arena leaderboard.

An evaluation is a leased job (``alignweb.jobs``, as ``EVALUATIONS``), claimed by the
``training.tasks.evaluate_version`` task; one that cannot be run (no active scorer, no held-back
prompt, a model served from an endpoint) is recorded as skipped with the reason, and the run that
produced the version is not affected.
"""

from collections.abc import Callable
from datetime import timedelta

from django.utils import timezone

from alignweb.errors import user_error_text
from alignweb.jobs import Lifecycle
from alignweb.named_tasks import named_task
from training.models import (
    EvaluationOpponent,
    EvaluationState,
    ModelKind,
    ModelVersion,
    VersionEvaluation,
    VersionStatus,
)
from training.selectors import held_back_prompts
from training.services.registry import version_for_base_model

# Sampled at temperature 1 (the KL estimate is unbiased there), seeded, both policies alike.
DEFAULT_SETTINGS = {"max_new_tokens": 128, "temperature": 1.0, "top_p": 1.0, "seed": 0}
MAX_PROMPTS = 200  # held-back prompts scored per evaluation, oldest first
evaluate_version = named_task("training.tasks.evaluate_version")


def _requeued(evaluation_id: int, worker_id: str) -> None:
    evaluate_version.delay_on_commit(evaluation_id)


# At least 30 s: the first beat can wait behind loading three models.
EVALUATIONS = Lifecycle(
    VersionEvaluation, name="evaluation", min_stale=timedelta(seconds=30), on_requeue=_requeued
)


def weights_of(version: ModelVersion) -> str:
    """What the ML core loads for ``version``: its checkpoint, or the base model it names."""
    return version.checkpoint_path or version.base_model


def evaluation_base(*, version: ModelVersion) -> ModelVersion | None:
    """The version a policy was trained from: its parent, or the registered untrained base model."""
    if version.parent_id:
        return version.parent
    if version.run_id is None:
        return None
    return version_for_base_model(project=version.project, base_model=version.base_model)


def _skip_reason(*, version, opponent, reference, judge, n_prompts: int) -> str:
    if judge is None:
        return (
            "No active scorer to judge with: promote a reward model to active scorer, and the next "
            "policy is judged by it."
        )
    if n_prompts == 0:
        return "No held-back prompt to evaluate on: mark some prompts as held back."
    for model in (version, opponent, reference):
        if model.endpoint_url or not weights_of(model):
            return (
                f"{model.name} has no local weights (it is served from an endpoint); an evaluation "
                "samples and takes log-probs here."
            )
    return ""


def evaluations_queue_for_version(*, version: ModelVersion) -> list[VersionEvaluation]:
    """Queue the automatic evaluations of a newly registered policy (none for a reward model):
    against its base, and against the serving version when there is one other than the base.

    Call it before the version is promoted (so that "serving" still means the previous version),
    inside the transaction that registers it: each evaluation is enqueued after commit. Judged by
    the project's active scorer at this moment; without one, or without held-back prompts, the
    evaluation is stored as skipped with the reason. A second call adds nothing."""
    if version.kind != ModelKind.POLICY:
        return []
    project = version.project
    base = evaluation_base(version=version)
    versions = ModelVersion.objects.filter(project=project)
    serving = versions.filter(status=VersionStatus.SERVING).exclude(pk=version.pk).first()
    judge = versions.filter(status=VersionStatus.ACTIVE_SCORER).first()
    opponents = [(EvaluationOpponent.BASE, base)] if base is not None else []
    if serving is not None and (base is None or serving.pk != base.pk):
        opponents.append((EvaluationOpponent.PREVIOUS_SERVING, serving))
    n_prompts = min(held_back_prompts(project=project).count(), MAX_PROMPTS)
    queued = []
    for role, opponent in opponents:
        reference = base or opponent
        reason = _skip_reason(
            version=version, opponent=opponent, reference=reference, judge=judge, n_prompts=n_prompts
        )
        evaluation, created = VersionEvaluation.objects.get_or_create(
            version=version,
            opponent=opponent,
            defaults={
                "project": project,
                "opponent_role": role,
                "reference": reference,
                "judge": judge,
                "judge_label": judge.name if judge else "",
                "settings": dict(DEFAULT_SETTINGS),
                "n_prompts": n_prompts,
                **(
                    {"state": EvaluationState.SKIPPED, "error": reason, "finished_at": timezone.now()}
                    if reason
                    else {}
                ),
            },
        )
        if created and not reason:
            evaluate_version.delay_on_commit(evaluation.pk)
        queued.append(evaluation)
    return queued


def evaluation_claim(*, evaluation_id: int, worker_id: str) -> VersionEvaluation | None:
    """Take a queued evaluation for ``worker_id``; None when another worker has it, it is finished
    or skipped (a skipped one is never queued), or it ran out of attempts."""
    if not EVALUATIONS.claim(evaluation_id, worker_id=worker_id):
        return None
    return VersionEvaluation.objects.select_related("version", "opponent", "reference", "judge").get(
        pk=evaluation_id
    )


def evaluation_execute(*, evaluation_id: int, worker_id: str, evaluate_fn: Callable) -> VersionEvaluation:
    """Run a claimed evaluation with ``evaluate_fn`` (``training.ml.version_eval.evaluate_policy``,
    passed in so this module never imports torch) and store its result, or its failure as the
    user may read it. A worker that lost the evaluation writes nothing."""
    evaluation = VersionEvaluation.objects.select_related("version", "opponent", "reference", "judge").get(
        pk=evaluation_id
    )
    prompts = [p.messages for p in held_back_prompts(project=evaluation.project)[:MAX_PROMPTS]]
    try:
        if evaluation.judge is None:
            raise ValueError(f"The judge ({evaluation.judge_label}) was deleted; nothing can score this.")
        reference = evaluation.reference or evaluation.opponent
        with EVALUATIONS.heartbeat(evaluation_id, worker_id=worker_id):
            result = evaluate_fn(
                policy=weights_of(evaluation.version),
                opponent=weights_of(evaluation.opponent),
                reference=weights_of(reference),
                judge=weights_of(evaluation.judge),
                prompts=prompts,
                settings=dict(evaluation.settings),
            )
    except Exception as error:
        EVALUATIONS.fail(evaluation_id, worker_id=worker_id, error=user_error_text(error))
    else:
        EVALUATIONS.finish(
            evaluation_id,
            worker_id=worker_id,
            n_prompts=result.n_prompts,
            win_rate=result.win_rate,
            ci_low=result.ci_low,
            ci_high=result.ci_high,
            wins=result.wins,
            ties=result.ties,
            losses=result.losses,
            mean_kl=result.mean_kl,
            mean_length_tuned=result.mean_length_policy,
            mean_length_opponent=result.mean_length_opponent,
        )
    return VersionEvaluation.objects.get(pk=evaluation_id)


def evaluation_fail(*, evaluation_id: int, worker_id: str, error: str) -> None:
    EVALUATIONS.fail(evaluation_id, worker_id=worker_id, error=error)


def evaluations_reap_stale(*, now=None) -> list[int]:
    """Queue again the running evaluations whose worker went silent (they start over), fail those
    out of attempts; returns the ids queued again."""
    return EVALUATIONS.reap_stale(now=now)

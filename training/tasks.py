"""Celery tasks of the closed loop: thin adapters that take ids, claim work atomically and call a
service. Only these function bodies import the ML core (torch), so the web process never does.

Queues: ``training.tasks.*`` is routed to the ``training`` queue (settings.CELERY_TASK_ROUTES);
the reaper sets ``queue="default"`` so a busy training worker cannot delay it.

Dead workers: the training worker beats (``TrainingRun.heartbeat_at``) from the ``on_log``
callback and a heartbeat thread. ``reap_stale_runs`` runs on the beat schedule
(``CELERY_BEAT_SCHEDULE``, every ``ALIGNWEB_REAPER_INTERVAL_SECONDS``; run beat with
``celery -A alignweb beat`` or a worker started with ``-B``) and also when a worker starts; it
re-queues runs whose heartbeat is older than ``ALIGNWEB_RUN_STALE_SECONDS``, and the next claim
resumes from the newest checkpoint. Attempts are counted in the database (``max_attempts``).
Generation jobs beat from a heartbeat thread too; ``reap_stale_generation_jobs`` queues a silent
one again, and its next claim resumes after the last committed batch. Evaluations of a new policy
version (``evaluate_version``) beat from a heartbeat thread as well and start over when reaped
(``reap_stale_evaluations``). All follow the leased-job lifecycle of ``alignweb.jobs``, as exports
do.
"""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.conf import settings

from alignweb.errors import user_error_text
from alignweb.heartbeat import new_worker_id

logger = logging.getLogger(__name__)

SOFT_LIMIT = getattr(settings, "ALIGNWEB_TRAINING_SOFT_TIME_LIMIT", 6 * 3600)
HARD_LIMIT = getattr(settings, "ALIGNWEB_TRAINING_TIME_LIMIT", SOFT_LIMIT + 600)


@shared_task(acks_late=True, soft_time_limit=SOFT_LIMIT, time_limit=HARD_LIMIT)
def train_run(run_id: int) -> str:
    """Claim run ``run_id`` and train it with ``training.ml.api.run_training`` (or ``run_rl``)."""
    from training.services import execution, runs

    worker_id = new_worker_id()
    if runs.run_claim(run_id=run_id, worker_id=worker_id) is None:
        return "not claimed"
    try:
        from training.ml.api import run_rl, run_training
        from training.ml.data import PreferenceExample
    except Exception as error:
        runs.run_fail(
            run_id=run_id, worker_id=worker_id, error="Cannot import the ML core: " + user_error_text(error)
        )
        return "failed"
    run = execution.run_execute(
        run_id=run_id,
        worker_id=worker_id,
        train_fn=run_training,
        make_example=PreferenceExample,
        rl_fn=run_rl,
        time_limit_error=SoftTimeLimitExceeded,
    )
    return run.state if run else "lost"


def _sampler_for(version):
    """A Generator (checkpoint or base model) or an EndpointClient for ``version``."""
    if version.endpoint_url:
        from training.endpoint import EndpointClient
        from training.endpoint_keys import api_key_for

        key = api_key_for(version.api_key_env, endpoint_url=version.endpoint_url)
        return EndpointClient(base_url=version.endpoint_url, model=version.endpoint_model, api_key=key), {
            "source": "endpoint",
            "endpoint_url": version.endpoint_url,
            "model": version.endpoint_model,
        }
    from training.ml.generation import Generator

    target = version.checkpoint_path or version.base_model
    return Generator.load(target), {"source": "checkpoint", "model": target}


@shared_task(acks_late=True, soft_time_limit=SOFT_LIMIT, time_limit=HARD_LIMIT)
def generate_responses(job_id: int) -> str:
    """Claim generation job ``job_id`` and generate its remaining prompts."""
    from training.services import generation

    worker_id = new_worker_id()
    job = generation.generation_job_claim(job_id=job_id, worker_id=worker_id)
    if job is None:
        return "not claimed"
    try:
        with generation.generation_heartbeat_thread(job_id=job_id, worker_id=worker_id):
            sampler, source = _sampler_for(job.model_version)
            opponent_sampler = None
            if job.opponent and (
                job.opponent.endpoint_url or job.opponent.checkpoint_path or job.opponent.base_model
            ):
                opponent_sampler = _LazySampler(job.opponent)
            job = generation.generation_execute(
                job_id=job_id,
                worker_id=worker_id,
                sampler=sampler,
                opponent_sampler=opponent_sampler,
                source=source,
            )
    except generation.JobLost:
        return "lost"
    except Exception as error:
        generation.generation_fail(job_id=job_id, worker_id=worker_id, error=user_error_text(error))
        return "failed"
    score_comparisons.delay(job.project_id)
    return job.state


class _LazySampler:
    """Loads the opponent's model only if some prompt lacks its responses."""

    def __init__(self, version) -> None:
        self.version = version
        self._sampler = None

    def generate(self, prompts, **kwargs):
        if self._sampler is None:
            self._sampler, _ = _sampler_for(self.version)
        return self._sampler.generate(prompts, **kwargs)


@shared_task(acks_late=True, soft_time_limit=SOFT_LIMIT, time_limit=HARD_LIMIT)
def score_comparisons(project_id: int) -> int:
    """Re-prioritise the project's pending comparisons with its active scorer (or randomly)."""
    from annotation.models import Project
    from training.models import ModelVersion, QueueOrder, VersionStatus
    from training.selectors import loop_settings_for
    from training.services.active_learning import comparisons_prioritise

    project = Project.objects.get(pk=project_id)
    scorer_version = ModelVersion.objects.filter(project=project, status=VersionStatus.ACTIVE_SCORER).first()
    scorer = None
    order = loop_settings_for(project=project).queue_order
    if scorer_version is not None and order in (QueueOrder.UNCERTAINTY, QueueOrder.INFORMATIVE):
        from training.ml.serving import RewardScorer
        from training.services.registry import version_weights

        scorer = RewardScorer.load(version_weights(scorer_version))
    return comparisons_prioritise(project=project, order=order, scorer=scorer)


@shared_task(acks_late=True, soft_time_limit=SOFT_LIMIT, time_limit=HARD_LIMIT)
def evaluate_version(evaluation_id: int) -> str:
    """Claim evaluation ``evaluation_id`` and score its policy with ``training.ml.version_eval``."""
    from training.services import evaluations

    worker_id = new_worker_id()
    if evaluations.evaluation_claim(evaluation_id=evaluation_id, worker_id=worker_id) is None:
        return "not claimed"
    try:
        from training.ml.version_eval import evaluate_policy
    except Exception as error:
        evaluations.evaluation_fail(
            evaluation_id=evaluation_id,
            worker_id=worker_id,
            error="Cannot import the ML core: " + user_error_text(error),
        )
        return "failed"
    evaluation = evaluations.evaluation_execute(
        evaluation_id=evaluation_id, worker_id=worker_id, evaluate_fn=evaluate_policy
    )
    return evaluation.state


def _logged_requeue(requeued: list[int], *, what: str) -> list[int]:
    """A reaper's answer, logged when it found work: a re-queue means a worker died."""
    if requeued:
        logger.warning("Re-queued stale %s %s", what, requeued)
    return requeued


@shared_task(queue="default", ignore_result=True)
def reap_stale_runs() -> list[int]:
    """Re-queue runs whose worker stopped beating (see the module docstring)."""
    from training.services.runs import runs_reap_stale

    return _logged_requeue(runs_reap_stale(), what="training runs")


@shared_task(queue="default", ignore_result=True)
def reap_stale_generation_jobs() -> list[int]:
    """Queue again generation jobs whose worker stopped beating (``generation_jobs_reap_stale``)."""
    from training.services.generation import generation_jobs_reap_stale

    return _logged_requeue(generation_jobs_reap_stale(), what="generation jobs")


@shared_task(queue="default", ignore_result=True)
def reap_stale_evaluations() -> list[int]:
    """Queue again evaluations whose worker stopped beating (``evaluations_reap_stale``)."""
    from training.services.evaluations import evaluations_reap_stale

    return _logged_requeue(evaluations_reap_stale(), what="evaluations")


@worker_ready.connect
def _reap_on_worker_start(sender=None, **kwargs) -> None:
    """A fresh worker is the likeliest sign that an old one died: look for its work at once."""
    try:
        reap_stale_runs.delay()
        reap_stale_generation_jobs.delay()
        reap_stale_evaluations.delay()
    except Exception:  # the broker may be down at start; the beat schedule will try again
        logger.exception("Could not enqueue the stale-work reapers at worker start.")

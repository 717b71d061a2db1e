"""The life of a background job that a worker leases: training runs (``training.services.runs``),
generation jobs (``training.services.generation``), evaluations of policy versions
(``training.services.evaluations``) and exports (``annotation.services.export_jobs``).

A job moves ``queued -> running -> succeeded | failed``. A claim takes a queued job for one worker
(its ``worker_id``, fresh per claim) and counts the attempt; while running, the worker proves it is
alive through ``heartbeat_at`` (``alignweb.heartbeat``). Every write a worker makes goes through
``Lifecycle.owned``: filtered on ``state=running`` and its own id, so a worker whose job was reaped
(or cancelled) writes nothing and learns that it lost the job. The reaper queues again a running
job whose heartbeat is older than ``stale_after()``, or fails it once ``attempts`` reached
``max_attempts``; a worker that later claims it resumes where the last one committed (a run from
its checkpoint, a generation job after its last batch, an export from the start).

The three kinds differ only in what they work on, so each is one ``Lifecycle`` over its model, with
the differences as named parameters: a floor on the staleness period (generation jobs, whose first
beat can wait on loading a model), what to do with a job queued again (enqueue the task, log it),
and why one is given up on (an export the ``export`` command wrote cannot move to a worker).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import models, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from alignweb.heartbeat import Heartbeat, beat_interval, stale_after

DEFAULT_MAX_ATTEMPTS = 3


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class LeasedJob(models.Model):
    """The fields the lifecycle reads and writes. A model may override ``state`` with more choices
    (a run can also be cancelled) as long as it keeps these four values."""

    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    worker_id = models.CharField(max_length=200, blank=True, help_text="The worker that holds the lease.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times a worker claimed the job.")
    max_attempts = models.PositiveSmallIntegerField(
        default=DEFAULT_MAX_ATTEMPTS, help_text="Claims allowed before the job fails."
    )
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker first claimed it.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        abstract = True


def gave_up(*, worker_id: str, attempts: int, max_attempts: int) -> str:
    """Why the reaper failed a job rather than queue it again (the default reason)."""
    return f"The worker stopped answering on attempt {attempts} of {max_attempts}; giving up."


OUT_OF_ATTEMPTS = "Gave up: every allowed attempt was started and none finished (workers lost or killed)."


@dataclass(frozen=True)
class Lifecycle:
    """Claim, beat, finish, fail and reap for the jobs of one ``LeasedJob`` model.

    ``name`` names the heartbeat thread; ``min_stale`` is a floor on ``stale_after()`` for this
    kind; ``on_requeue(job_id, worker_id)`` runs inside the reaper's transaction for each job it
    queued again (enqueue with ``delay_on_commit``); ``reason(worker_id=, attempts=,
    max_attempts=)`` says why a job out of attempts failed."""

    model: type[LeasedJob]
    name: str
    min_stale: timedelta = timedelta(0)
    on_requeue: Callable[[int, str], None] | None = None
    reason: Callable[..., str] = gave_up

    def stale_after(self) -> timedelta:
        return max(stale_after(), self.min_stale)

    def owned(self, job_id: int, *, worker_id: str) -> models.QuerySet:
        """The job, while it is running for ``worker_id``: the filter of every write a worker makes."""
        return self.model.objects.filter(pk=job_id, state=JobState.RUNNING, worker_id=worker_id)

    def claim(self, job_id: int, *, worker_id: str) -> bool:
        """Take a queued job for ``worker_id`` and count the attempt. One conditional UPDATE, so of
        two claims exactly one wins. A queued job out of attempts fails instead (False)."""
        now = timezone.now()
        queued = self.model.objects.filter(pk=job_id, state=JobState.QUEUED)
        if queued.filter(attempts__lt=F("max_attempts")).update(
            state=JobState.RUNNING,
            worker_id=worker_id,
            attempts=F("attempts") + 1,
            heartbeat_at=now,
            started_at=Coalesce("started_at", now),
            error="",
        ):
            return True
        queued.filter(attempts__gte=F("max_attempts")).update(
            state=JobState.FAILED, finished_at=now, error=OUT_OF_ATTEMPTS
        )
        return False

    def beat(self, job_id: int, *, worker_id: str, **fields) -> bool:
        """Prove the worker is alive (writing ``fields`` with the beat); False when the job is no
        longer its own."""
        return bool(self.owned(job_id, worker_id=worker_id).update(heartbeat_at=timezone.now(), **fields))

    def finish(self, job_id: int, *, worker_id: str, state: str = JobState.SUCCEEDED, **fields) -> bool:
        """Record the outcome if the job is still ``worker_id``'s; False when it is not (the result
        of a worker that lost its job is not written)."""
        now = timezone.now()
        return bool(
            self.owned(job_id, worker_id=worker_id).update(
                state=state, finished_at=now, heartbeat_at=now, **fields
            )
        )

    def fail(self, job_id: int, *, worker_id: str, error: str, **fields) -> bool:
        return self.finish(job_id, worker_id=worker_id, state=JobState.FAILED, error=error[-20000:], **fields)

    def heartbeat(self, job_id: int, *, worker_id: str) -> Heartbeat:
        """A thread that beats for the job while the worker works, four times per staleness
        period, so that a slow step (or loading a model) is not taken for a dead worker."""
        return Heartbeat(
            lambda: self.beat(job_id, worker_id=worker_id),
            interval=beat_interval(self.stale_after()),
            name=f"heartbeat-{self.name}-{job_id}",
        )

    def reap_stale(self, *, now=None) -> list[int]:
        """Queue again the running jobs whose heartbeat is older than ``stale_after()`` (or that
        never beat), fail those out of attempts; returns the ids queued again.

        The silent rows are read ``FOR UPDATE SKIP LOCKED`` and written in the same transaction: a
        worker that is beating or finishing at that moment holds its row and is left alone, and
        one that beats just after finds the job no longer its own."""
        now = now or timezone.now()
        silent = Q(heartbeat_at__lt=now - self.stale_after()) | Q(heartbeat_at__isnull=True)
        requeued: list[int] = []
        with transaction.atomic():
            rows = list(
                self.model.objects.select_for_update(skip_locked=True)
                .filter(silent, state=JobState.RUNNING)
                .order_by("pk")
                .values_list("pk", "worker_id", "attempts", "max_attempts")
            )
            for job_id, worker_id, attempts, max_attempts in rows:
                job = self.model.objects.filter(pk=job_id)
                if attempts >= max_attempts:
                    error = self.reason(worker_id=worker_id, attempts=attempts, max_attempts=max_attempts)
                    job.update(state=JobState.FAILED, finished_at=now, error=error)
                    continue
                job.update(state=JobState.QUEUED, worker_id="")
                if self.on_requeue is not None:
                    self.on_requeue(job_id, worker_id)
                requeued.append(job_id)
        return requeued

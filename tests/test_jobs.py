"""The leased-job lifecycle (``alignweb.jobs``) that training runs, generation jobs and exports
share: every test runs against all three kinds."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alignweb.jobs import DEFAULT_MAX_ATTEMPTS, OUT_OF_ATTEMPTS, JobState
from annotation.models import Export
from annotation.services import export_jobs
from tests.races import in_another_transaction
from tests.training.helpers import ModelVersionFactory
from training.models import DataSnapshot, GenerationJob, TrainingRun
from training.services import generation, runs

pytestmark = pytest.mark.django_db

KINDS = {
    "run": (runs.RUNS, runs.runs_reap_stale, runs.run_heartbeat, "run_id"),
    "generation": (
        generation.GENERATION_JOBS,
        generation.generation_jobs_reap_stale,
        generation.generation_heartbeat,
        "job_id",
    ),
    "export": (
        export_jobs.EXPORTS,
        export_jobs.exports_reap_stale,
        export_jobs.export_heartbeat,
        "export_id",
    ),
}


def queued_job(kind: str, project):
    """A queued job of ``kind``, made directly so no task is sent."""
    if kind == "run":
        snapshot = DataSnapshot.objects.create(project=project, sha256="0" * 64)
        return TrainingRun.objects.create(project=project, kind="reward_model", snapshot=snapshot)
    if kind == "generation":
        return GenerationJob.objects.create(
            project=project, model_version=ModelVersionFactory(project=project)
        )
    return Export.objects.create(project=project, format="votes")


@pytest.fixture(params=list(KINDS))
def kind(request):
    return request.param


@pytest.fixture
def lifecycle(kind):
    return KINDS[kind][0]


@pytest.fixture
def job(kind, project):
    return queued_job(kind, project)


def silent_for(job, age: timedelta) -> None:
    type(job).objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - age)


def reap(kind, django_capture_on_commit_callbacks) -> tuple[list[int], int]:
    """The kind's own reaper; returns the ids queued again and how many tasks it sent."""
    with django_capture_on_commit_callbacks(execute=False) as sent:
        requeued = KINDS[kind][1]()
    return requeued, len(sent)


def test_of_two_claims_exactly_one_wins(lifecycle, job):
    assert lifecycle.claim(job.pk, worker_id="w1")
    assert not lifecycle.claim(job.pk, worker_id="w2")
    job.refresh_from_db()
    assert (job.state, job.worker_id, job.attempts) == (JobState.RUNNING, "w1", 1)
    assert job.started_at is not None and job.heartbeat_at is not None


def test_a_silent_job_is_queued_again_once_and_a_beating_one_is_left_alone(
    kind, lifecycle, job, project, django_capture_on_commit_callbacks
):
    beating = queued_job(kind, project) if kind != "run" else None  # one active run per kind
    lifecycle.claim(job.pk, worker_id="dead")
    silent_for(job, timedelta(hours=1))
    if beating:
        lifecycle.claim(beating.pk, worker_id="alive")

    assert reap(kind, django_capture_on_commit_callbacks) == ([job.pk], 1)  # its task, sent once
    job.refresh_from_db()
    assert (job.state, job.worker_id) == (JobState.QUEUED, "")
    assert reap(kind, django_capture_on_commit_callbacks) == ([], 0)  # queued, not running: not sent twice
    if beating:
        beating.refresh_from_db()
        assert (beating.state, beating.worker_id) == (JobState.RUNNING, "alive")
    assert lifecycle.claim(job.pk, worker_id="next")  # and the next worker resumes it
    job.refresh_from_db()
    assert job.attempts == 2


@pytest.mark.parametrize("stale_seconds", [5, 60])
def test_stale_means_no_beat_for_the_staleness_period_and_generation_waits_at_least_30_s(
    kind, lifecycle, job, settings, stale_seconds, django_capture_on_commit_callbacks
):
    settings.ALIGNWEB_RUN_STALE_SECONDS = stale_seconds
    period = max(stale_seconds, 30) if kind == "generation" else stale_seconds
    assert lifecycle.stale_after() == timedelta(seconds=period)
    lifecycle.claim(job.pk, worker_id="slow")
    silent_for(job, timedelta(seconds=period - 2))
    assert reap(kind, django_capture_on_commit_callbacks)[0] == []
    silent_for(job, timedelta(seconds=period + 2))
    assert reap(kind, django_capture_on_commit_callbacks)[0] == [job.pk]


def test_a_job_fails_after_its_last_attempt_goes_silent(
    kind, lifecycle, job, django_capture_on_commit_callbacks
):
    assert job.max_attempts == DEFAULT_MAX_ATTEMPTS == 3
    for attempt in range(1, DEFAULT_MAX_ATTEMPTS + 1):
        assert lifecycle.claim(job.pk, worker_id=f"w{attempt}")
        silent_for(job, timedelta(hours=1))
        requeued, _ = reap(kind, django_capture_on_commit_callbacks)
        assert requeued == ([job.pk] if attempt < DEFAULT_MAX_ATTEMPTS else [])
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.FAILED, 3)
    assert "attempt 3 of 3" in job.error and job.finished_at is not None


def test_a_queued_job_out_of_attempts_fails_at_its_claim(lifecycle, job):
    type(job).objects.filter(pk=job.pk).update(attempts=1, max_attempts=1)
    assert not lifecycle.claim(job.pk, worker_id="w1")
    job.refresh_from_db()
    assert (job.state, job.error, job.worker_id) == (JobState.FAILED, OUT_OF_ATTEMPTS, "")


def test_a_reaped_owner_can_no_longer_write(kind, lifecycle, job, django_capture_on_commit_callbacks):
    heartbeat, id_name = KINDS[kind][2], KINDS[kind][3]
    lifecycle.claim(job.pk, worker_id="presumed-dead")
    silent_for(job, timedelta(hours=1))
    reap(kind, django_capture_on_commit_callbacks)
    lifecycle.claim(job.pk, worker_id="the-new-owner")

    assert not heartbeat(**{id_name: job.pk, "worker_id": "presumed-dead"})
    assert not lifecycle.beat(job.pk, worker_id="presumed-dead")
    assert not lifecycle.fail(job.pk, worker_id="presumed-dead", error="late")
    assert not lifecycle.finish(job.pk, worker_id="presumed-dead")
    job.refresh_from_db()
    assert (job.state, job.worker_id, job.error) == (JobState.RUNNING, "the-new-owner", "")
    assert heartbeat(**{id_name: job.pk, "worker_id": "the-new-owner"})
    assert lifecycle.finish(job.pk, worker_id="the-new-owner")
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED


@pytest.fixture
def no_tasks_sent(monkeypatch):
    """Committed re-queues would send real tasks to the broker; record them instead."""
    from alignweb.named_tasks import NamedTask

    sent = []
    monkeypatch.setattr(NamedTask, "delay_on_commit", lambda task, job_id: sent.append(job_id))
    return sent


@pytest.mark.django_db(transaction=True)  # the worker writes through a connection of its own
def test_the_reaper_leaves_a_job_whose_worker_is_beating_at_that_moment(kind, lifecycle, job, no_tasks_sent):
    lifecycle.claim(job.pk, worker_id="slow")
    silent_for(job, timedelta(hours=1))
    with in_another_transaction(lambda: lifecycle.beat(job.pk, worker_id="slow")) as beat:
        assert beat == [True]
        with connection.cursor() as cursor:  # a reaper that waited for the row would fail here
            cursor.execute("SET lock_timeout = '2s'")
        assert KINDS[kind][1]() == []  # the beating worker holds its row: skipped, not waited for
    job.refresh_from_db()
    assert (job.state, job.worker_id) == (JobState.RUNNING, "slow")
    assert timezone.now() - job.heartbeat_at < timedelta(minutes=1)
    assert no_tasks_sent == []


@pytest.mark.django_db(transaction=True)
def test_a_beat_that_waited_on_the_reaper_finds_the_job_gone(kind, lifecycle, job, no_tasks_sent):
    lifecycle.claim(job.pk, worker_id="slow")
    silent_for(job, timedelta(hours=1))
    beats = []

    def late_beat() -> None:
        beats.append(lifecycle.beat(job.pk, worker_id="slow"))
        connection.close()

    # The reaper's transaction holds the row while the old worker's beat waits for it.
    with in_another_transaction(lambda: KINDS[kind][1]()) as reaped:
        assert reaped == [[job.pk]]
        beat = threading.Thread(target=late_beat)
        beat.start()
        beat.join(timeout=0.5)
        assert beat.is_alive() and beats == []  # blocked on the reaper's lock
    beat.join(timeout=30)
    assert beats == [False]
    job.refresh_from_db()
    assert (job.state, job.worker_id) == (JobState.QUEUED, "")
    assert no_tasks_sent == [job.pk]

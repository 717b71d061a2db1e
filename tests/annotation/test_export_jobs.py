"""An export's worker can die mid-export: the reaper queues it again, and only the worker that owns
an export records its result (``annotation.services.export_jobs``)."""

import time
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from alignweb.jobs import DEFAULT_MAX_ATTEMPTS
from annotation.models import Export
from annotation.services import export_jobs
from annotation.services.errors import ServiceError
from annotation.services.export_jobs import export_create, exports_reap_stale
from annotation.services.exports import ExportOptions
from annotation.tasks import export_run_task
from tests.factories import ComparisonFactory, judgement

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(hours=1)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def queued(project, annotator, django_capture_on_commit_callbacks):
    judgement(ComparisonFactory.create_pair(project=project, texts=("Yes.", "No.")), annotator, "a")
    with django_capture_on_commit_callbacks(execute=False):
        return export_create(project=project, options=ExportOptions(format="votes"))


def claimed_by(export, worker_id, *, attempts=1, beat_ago=LONG_AGO):
    """As if ``worker_id`` claimed the export and last beat ``beat_ago``."""
    Export.objects.filter(pk=export.pk).update(
        state="running", worker_id=worker_id, attempts=attempts, heartbeat_at=timezone.now() - beat_ago
    )


def test_a_worker_claims_an_export_and_records_who_ran_it(queued):
    export_run_task(queued.pk)
    queued.refresh_from_db()
    assert (queued.state, queued.attempts, queued.rows) == ("succeeded", 1, 1)
    assert queued.worker_id and queued.heartbeat_at is not None


def test_an_export_whose_worker_died_is_queued_again_and_finished_by_another(
    queued, django_capture_on_commit_callbacks
):
    claimed_by(queued, "dead-worker")
    export_run_task(queued.pk)  # the redelivered task finds it claimed: nothing happens
    queued.refresh_from_db()
    assert (queued.state, queued.worker_id) == ("running", "dead-worker")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert exports_reap_stale() == [queued.pk]
    assert len(callbacks) == 1  # the export's task, sent once the re-queue is committed
    queued.refresh_from_db()
    assert (queued.state, queued.worker_id) == ("queued", "")

    export_run_task(queued.pk)
    queued.refresh_from_db()
    assert (queued.state, queued.attempts, queued.rows, queued.error) == ("succeeded", 2, 1, "")


def test_the_reaper_leaves_a_live_export_alone(queued):
    claimed_by(queued, "alive", beat_ago=timedelta(seconds=1))
    assert exports_reap_stale() == []
    queued.refresh_from_db()
    assert (queued.state, queued.worker_id) == ("running", "alive")


def test_the_reaper_gives_up_on_an_export_that_used_all_its_attempts(queued):
    claimed_by(queued, "dead-again", attempts=DEFAULT_MAX_ATTEMPTS)
    assert exports_reap_stale() == []
    queued.refresh_from_db()
    assert queued.state == "failed" and f"attempt 3 of {DEFAULT_MAX_ATTEMPTS}" in queued.error
    assert queued.finished_at is not None


def test_an_export_command_that_died_fails_rather_than_moving_to_a_worker(queued):
    claimed_by(queued, export_jobs.COMMAND_PREFIX + "host:1:abc")
    Export.objects.filter(pk=queued.pk).update(max_attempts=1)  # as ``export_to_file`` records it
    assert exports_reap_stale() == []
    queued.refresh_from_db()
    assert queued.state == "failed" and "export command stopped" in queued.error


def test_a_worker_that_lost_its_export_records_nothing_and_removes_its_file(queued, monkeypatch):
    written = []

    def taken_over_while_writing(*, project, options, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("stale rows\n")
        written.append(path)
        # Meanwhile the reaper gave the export to another worker, which now owns it.
        Export.objects.filter(pk=queued.pk).update(worker_id="the-new-owner", attempts=2)
        return 7, "f" * 64

    monkeypatch.setattr(export_jobs, "export_to_path", taken_over_while_writing)
    export_run_task(queued.pk)
    queued.refresh_from_db()
    assert (queued.state, queued.worker_id, queued.rows, queued.sha256) == (
        "running",
        "the-new-owner",
        0,
        "",
    )
    assert not written[0].exists()


def test_each_attempt_writes_a_file_of_its_own(queued, media):
    claimed_by(queued, "dead-worker")
    exports_reap_stale()
    export_run_task(queued.pk)
    queued.refresh_from_db()
    assert queued.attempts == 2 and queued.path.endswith(f"{queued.pk}-votes-2.jsonl")
    assert (media / queued.path).is_file()


def test_an_export_claimed_before_exports_kept_a_heartbeat_is_reaped(queued):
    Export.objects.filter(pk=queued.pk).update(state="running")  # worker_id "", heartbeat_at NULL
    assert exports_reap_stale() == [queued.pk]
    queued.refresh_from_db()
    assert queued.state == "queued"


def test_an_export_with_unreadable_options_fails_instead_of_hanging(queued):
    Export.objects.filter(pk=queued.pk).update(options={"format": "no-such-format"})
    with pytest.raises(ServiceError):
        export_run_task(queued.pk)
    queued.refresh_from_db()
    assert queued.state == "failed" and "no-such-format" in queued.error


def test_an_export_past_its_time_limit_fails_with_the_reason(queued, monkeypatch):
    def too_slow(*, project, options, path):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(export_jobs, "export_to_path", too_slow)
    with pytest.raises(SoftTimeLimitExceeded):
        export_run_task(queued.pk)
    queued.refresh_from_db()
    assert queued.state == "failed" and "ALIGNWEB_EXPORT_SOFT_TIME_LIMIT (3600 s)" in queued.error
    assert (export_run_task.soft_time_limit, export_run_task.time_limit) == (
        settings.ALIGNWEB_EXPORT_SOFT_TIME_LIMIT,
        settings.ALIGNWEB_EXPORT_TIME_LIMIT,
    )


def test_the_export_command_fails_when_its_export_was_not_recorded(project, queued, monkeypatch, tmp_path):
    from django.core.management import CommandError, call_command

    def reaped_while_writing(*, project, options, path):
        Export.objects.filter(state="running").update(state="failed", error="The export command stopped.")
        return 1, "0" * 64

    monkeypatch.setattr(export_jobs, "export_to_path", reaped_while_writing)
    with pytest.raises(CommandError, match="not recorded as written: failed"):
        call_command("export", "--project", project.slug, "--format", "votes", "--out", str(tmp_path / "x"))


def test_the_reaper_runs_on_the_beat_schedule_of_the_default_queue():
    entry = next(
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "annotation.exports_reap_stale"
    )
    assert entry["options"]["queue"] == "default"
    assert entry["schedule"] == settings.ALIGNWEB_REAPER_INTERVAL_SECONDS


@pytest.mark.django_db(transaction=True)  # the heartbeat thread writes through its own connection
def test_a_running_export_keeps_beating_while_it_writes(queued, monkeypatch, settings):
    settings.ALIGNWEB_RUN_STALE_SECONDS = 4  # a beat every second
    beats = []

    def slow_write(*, project, options, path):
        started = Export.objects.get(pk=queued.pk).heartbeat_at
        time.sleep(2.5)
        beats.append((started, Export.objects.get(pk=queued.pk).heartbeat_at))
        return 1, "0" * 64

    monkeypatch.setattr(export_jobs, "export_to_path", slow_write)
    export_run_task(queued.pk)
    started, later = beats[0]
    assert later - started >= timedelta(seconds=1)
    queued.refresh_from_db()
    assert queued.state == "succeeded"


def test_the_export_command_claims_its_export_with_its_only_attempt(project, tmp_path):
    from annotation.services.export_jobs import export_to_file

    export = export_to_file(
        project=project, options=ExportOptions(format="votes"), path=tmp_path / "out.jsonl"
    )
    assert (export.state, export.attempts, export.max_attempts) == ("succeeded", 1, 1)
    assert export.worker_id.startswith(export_jobs.COMMAND_PREFIX) and export.started_at is not None

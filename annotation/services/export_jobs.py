"""An export's life as a job: queued, claimed by one worker, kept alive, finished or failed, and
taken back from a worker that died.

A worker owns a running export while ``worker_id`` holds its id (fresh per claim) and proves it is
alive through ``heartbeat_at`` (``alignweb.heartbeat``). Its last write, the result, is a
conditional UPDATE filtered on that id, and each attempt writes a file of its own (removed if
the attempt lost the export), so an attempt that was given up on cannot overwrite a later one's
row or file. ``exports_reap_stale`` (beat schedule, as for training runs) finds running exports
whose heartbeat is older than ``ALIGNWEB_RUN_STALE_SECONDS``: a worker's is queued again, up to
``MAX_ATTEMPTS`` claims, then failed; one the ``export`` command was writing fails, since only
that command knows where its file goes. Before this, a worker killed mid-export left the export
"running" forever: the redelivered task found it claimed and did nothing. The task has Celery
time limits (``ALIGNWEB_EXPORT_SOFT_TIME_LIMIT``), so a hung export fails rather than beats on.
"""

from collections.abc import Callable
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alignweb.heartbeat import Heartbeat, beat_interval, new_worker_id, stale_after
from alignweb.named_tasks import named_task
from annotation.exporters import get_exporter
from annotation.models import Export, ExportStatus, Project
from annotation.services.exports import ExportOptions, export_to_path

MAX_ATTEMPTS = 3
COMMAND_PREFIX = "command:"  # worker_id of an export the management command writes
export_run_task = named_task("annotation.export_run")


def export_directory(project: Project) -> Path:
    return Path(settings.MEDIA_ROOT) / "exports" / project.slug


@transaction.atomic
def export_create(*, project: Project, options: ExportOptions, user=None) -> Export:
    """Record an export and queue it; a worker runs ``export_run`` once the row is committed."""
    export = Export.objects.create(
        project=project, format=options.format, options=options.as_dict(), created_by=user
    )
    export_run_task.delay_on_commit(export.pk)
    return export


def export_run(*, export_id: int) -> Export:
    """Run a queued export. Safe to call twice: only the call that claims the queued row works.
    Each attempt writes its own file, so one given up on cannot replace a later one's."""
    claimed = Export.objects.filter(pk=export_id, status=ExportStatus.QUEUED).update(
        status=ExportStatus.RUNNING,
        worker_id=new_worker_id(),
        heartbeat_at=timezone.now(),
        attempts=F("attempts") + 1,
    )
    export = Export.objects.select_related("project").get(pk=export_id)
    if not claimed:
        return export

    def media_file(options: ExportOptions) -> Path:
        extension = get_exporter(options.format).extension
        return (
            export_directory(export.project) / f"{export.pk}-{options.format}-{export.attempts}.{extension}"
        )

    return _finish(export, media_file, discard_if_lost=True)


def export_to_file(*, project: Project, options: ExportOptions, path: Path, user=None) -> Export:
    """Export straight to ``path`` (the management command), recorded like any other export."""
    export = Export.objects.create(
        project=project,
        format=options.format,
        options=options.as_dict(),
        status=ExportStatus.RUNNING,
        worker_id=COMMAND_PREFIX + new_worker_id(),
        heartbeat_at=timezone.now(),
        attempts=1,
        created_by=user,
    )
    return _finish(export, lambda options: path.resolve(), discard_if_lost=False)


def export_heartbeat(*, export_id: int, worker_id: str) -> bool:
    """Prove the worker is alive; False when the export is no longer its own."""
    owned = Export.objects.filter(pk=export_id, status=ExportStatus.RUNNING, worker_id=worker_id)
    return bool(owned.update(heartbeat_at=timezone.now()))


def exports_reap_stale(*, now=None) -> list[int]:
    """Queue again the running exports whose worker went silent (up to ``MAX_ATTEMPTS`` claims),
    fail the others with the reason; returns the ids queued again."""
    now = now or timezone.now()
    cutoff = now - stale_after()
    requeued: list[int] = []
    # No heartbeat at all: claimed before exports kept one (migration 0010).
    silent = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    stale = Export.objects.filter(silent, status=ExportStatus.RUNNING)
    for export_id, worker_id, attempts in stale.values_list("pk", "worker_id", "attempts"):
        # Filtered on the worker id read above, so a heartbeat or a finish in between wins.
        same = stale.filter(pk=export_id, worker_id=worker_id)
        with transaction.atomic():
            if worker_id.startswith(COMMAND_PREFIX):
                error = "The export command stopped before it finished; run it again."
            elif attempts >= MAX_ATTEMPTS:
                error = f"The worker stopped during this export on each of {attempts} attempts; giving up."
            elif same.update(status=ExportStatus.QUEUED, worker_id=""):
                export_run_task.delay_on_commit(export_id)
                requeued.append(export_id)
                continue
            else:
                continue
            same.update(status=ExportStatus.FAILED, error=error, finished_at=now)
    return requeued


def _finish(export: Export, path_for: Callable[[ExportOptions], Path], *, discard_if_lost: bool) -> Export:
    """Write the file, beating meanwhile, and record the outcome if the export is still ours; a
    worker's file that nobody will record (``discard_if_lost``) is removed."""
    owned = Export.objects.filter(pk=export.pk, status=ExportStatus.RUNNING, worker_id=export.worker_id)
    heartbeat = Heartbeat(
        lambda: export_heartbeat(export_id=export.pk, worker_id=export.worker_id),
        interval=beat_interval(stale_after()),
        name=f"heartbeat-export-{export.pk}",
    )
    try:
        options = ExportOptions.from_dict(export.options)
        path = path_for(options)
        with heartbeat:
            rows, sha256 = export_to_path(project=export.project, options=options, path=path)
    except Exception as error:
        owned.update(status=ExportStatus.FAILED, error=_reason(error), finished_at=timezone.now())
        raise
    media = Path(settings.MEDIA_ROOT).resolve()
    stored_path = str(path.relative_to(media)) if path.is_relative_to(media) else str(path)
    recorded = owned.update(
        path=stored_path, rows=rows, sha256=sha256, status=ExportStatus.SUCCEEDED, finished_at=timezone.now()
    )
    if not recorded and discard_if_lost:
        path.unlink(missing_ok=True)
    export.refresh_from_db()
    return export


def _reason(error: Exception) -> str:
    if isinstance(error, SoftTimeLimitExceeded):
        limit = getattr(settings, "ALIGNWEB_EXPORT_SOFT_TIME_LIMIT", None)
        return f"The export ran past ALIGNWEB_EXPORT_SOFT_TIME_LIMIT ({limit} s) and was stopped."
    return f"{type(error).__name__}: {error}"


def export_file_path(export: Export) -> Path | None:
    """The file of a finished export under ``MEDIA_ROOT``, or None. Files the command wrote
    elsewhere are recorded but never served: the web process reads only its own media."""
    if export.status != ExportStatus.SUCCEEDED or not export.path:
        return None
    media = Path(settings.MEDIA_ROOT).resolve()
    path = (media / export.path).resolve()
    if not path.is_relative_to(media) or not path.is_file():
        return None
    return path

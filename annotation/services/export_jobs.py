"""An export's life as a leased job (``alignweb.jobs``): queued, claimed by one worker, kept alive,
finished or failed, and taken back from a worker that died.

A worker owns a running export while ``worker_id`` holds its id and proves it is alive through
``heartbeat_at``. Its last write, the result, goes through ``EXPORTS.finish``, filtered on that
id, and each attempt writes a file of its own (removed if the attempt lost the export), so an
attempt that was given up on cannot overwrite a later one's row or file. ``exports_reap_stale``
(beat schedule, as for training runs) queues a silent export again, up to ``max_attempts`` claims;
one the ``export`` command was writing is allowed a single attempt and fails, since only that
command knows where its file goes. The task has Celery time limits
(``ALIGNWEB_EXPORT_SOFT_TIME_LIMIT``), so a hung export fails rather than beats on.
"""

from collections.abc import Callable
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alignweb.errors import user_error_text
from alignweb.heartbeat import new_worker_id
from alignweb.jobs import JobState, Lifecycle, gave_up
from alignweb.named_tasks import named_task
from annotation.exporters import get_exporter
from annotation.models import Export, Project
from annotation.services.exports import ExportOptions, export_to_path

COMMAND_PREFIX = "command:"  # worker_id of an export the management command writes
export_run_task = named_task("annotation.export_run")


def _requeued(export_id: int, worker_id: str) -> None:
    export_run_task.delay_on_commit(export_id)


def _gave_up(*, worker_id: str, attempts: int, max_attempts: int) -> str:
    if worker_id.startswith(COMMAND_PREFIX):
        return "The export command stopped before it finished; run it again."
    return gave_up(worker_id=worker_id, attempts=attempts, max_attempts=max_attempts)


EXPORTS = Lifecycle(Export, name="export", on_requeue=_requeued, reason=_gave_up)


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
    claimed = EXPORTS.claim(export_id, worker_id=new_worker_id())
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
    """Export straight to ``path`` (the management command), recorded like any other export.
    Claimed at once, with its only attempt: no worker can take it over."""
    now = timezone.now()
    export = Export.objects.create(
        project=project,
        format=options.format,
        options=options.as_dict(),
        state=JobState.RUNNING,
        worker_id=COMMAND_PREFIX + new_worker_id(),
        heartbeat_at=now,
        started_at=now,
        attempts=1,
        max_attempts=1,
        created_by=user,
    )
    return _finish(export, lambda options: path.resolve(), discard_if_lost=False)


def export_heartbeat(*, export_id: int, worker_id: str) -> bool:
    """Prove the worker is alive; False when the export is no longer its own."""
    return EXPORTS.beat(export_id, worker_id=worker_id)


def exports_reap_stale(*, now=None) -> list[int]:
    """Queue again the running exports whose worker went silent (up to ``max_attempts`` claims),
    fail the others with the reason; returns the ids queued again."""
    return EXPORTS.reap_stale(now=now)


def _finish(export: Export, path_for: Callable[[ExportOptions], Path], *, discard_if_lost: bool) -> Export:
    """Write the file, beating meanwhile, and record the outcome if the export is still ours; a
    worker's file that nobody will record (``discard_if_lost``) is removed."""
    try:
        options = ExportOptions.from_dict(export.options)
        path = path_for(options)
        with EXPORTS.heartbeat(export.pk, worker_id=export.worker_id):
            rows, sha256 = export_to_path(project=export.project, options=options, path=path)
    except Exception as error:
        EXPORTS.fail(export.pk, worker_id=export.worker_id, error=_reason(error))
        raise
    media = Path(settings.MEDIA_ROOT).resolve()
    stored_path = str(path.relative_to(media)) if path.is_relative_to(media) else str(path)
    recorded = EXPORTS.finish(
        export.pk, worker_id=export.worker_id, path=stored_path, rows=rows, sha256=sha256
    )
    if not recorded and discard_if_lost:
        path.unlink(missing_ok=True)
    export.refresh_from_db()
    return export


def _reason(error: Exception) -> str:
    if isinstance(error, SoftTimeLimitExceeded):
        limit = getattr(settings, "ALIGNWEB_EXPORT_SOFT_TIME_LIMIT", None)
        return f"The export ran past ALIGNWEB_EXPORT_SOFT_TIME_LIMIT ({limit} s) and was stopped."
    return user_error_text(error)


def export_file_path(export: Export) -> Path | None:
    """The file of a finished export under ``MEDIA_ROOT``, or None. Files the command wrote
    elsewhere are recorded but never served: the web process reads only its own media."""
    if export.state != JobState.SUCCEEDED or not export.path:
        return None
    media = Path(settings.MEDIA_ROOT).resolve()
    path = (media / export.path).resolve()
    if not path.is_relative_to(media) or not path.is_file():
        return None
    return path

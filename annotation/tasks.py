"""Celery tasks of the annotation app: thin adapters that take ids and call one service."""

from celery import shared_task
from django.conf import settings

EXPORT_SOFT_LIMIT = getattr(settings, "ALIGNWEB_EXPORT_SOFT_TIME_LIMIT", 3600)
EXPORT_HARD_LIMIT = getattr(settings, "ALIGNWEB_EXPORT_TIME_LIMIT", EXPORT_SOFT_LIMIT + 60)


@shared_task(name="annotation.export_run", soft_time_limit=EXPORT_SOFT_LIMIT, time_limit=EXPORT_HARD_LIMIT)
def export_run_task(export_id: int) -> None:
    """Run a queued export; a second delivery finds it claimed and does nothing."""
    from annotation.services.export_jobs import export_run

    export_run(export_id=export_id)


@shared_task(name="annotation.leases_expire")
def leases_expire_task() -> int:
    """Give back every lease past its expiry. "next" already does this a batch at a time; this
    keeps ``open_slots`` honest for stats and the dashboard when nobody is annotating."""
    from annotation.services.queue import leases_expire

    return leases_expire(limit=None)


@shared_task(name="annotation.exports_reap_stale")
def exports_reap_stale_task() -> list[int]:
    """Queue again the exports whose worker died mid-export (``export_jobs.exports_reap_stale``)."""
    from annotation.services.export_jobs import exports_reap_stale

    return exports_reap_stale()

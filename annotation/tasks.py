"""Celery tasks of the annotation app: thin adapters that take ids and call one service."""

from celery import shared_task


@shared_task(name="annotation.export_run")
def export_run_task(export_id: int) -> None:
    """Run a queued export; a second delivery finds it claimed and does nothing."""
    from annotation.services.exports import export_run

    export_run(export_id=export_id)

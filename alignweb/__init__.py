"""alignweb: collect human preferences, train on them, serve the tuned model back."""

from alignweb.celery import app as celery_app

__all__ = ["celery_app"]

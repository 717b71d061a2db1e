"""The Celery app. Workers import tasks from each Django app's ``tasks`` module.

Run a light worker with ``celery -A alignweb worker -Q default`` and a GPU (or CPU) training
worker with ``celery -A alignweb worker -Q training --concurrency 1``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alignweb.settings")

app = Celery("alignweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

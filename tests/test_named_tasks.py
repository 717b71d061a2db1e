"""A service queues a task by its name (``alignweb.named_tasks``): after commit, with its
routes, and in-process when tasks run eagerly."""

import pytest

from alignweb.celery import app
from alignweb.named_tasks import named_task


def test_it_sends_the_task_by_name_after_commit(monkeypatch, django_capture_on_commit_callbacks, db):
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, *rest, **options: sent.append((name, args)))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        named_task("training.tasks.train_run").delay_on_commit(7)
    assert sent == []
    callbacks[0]()
    assert [(name, tuple(args)) for name, args in sent] == [("training.tasks.train_run", (7,))]


@pytest.mark.django_db
def test_eager_mode_runs_the_task_in_process():
    eager, app.conf.task_always_eager = app.conf.task_always_eager, True
    try:
        result = named_task("annotation.leases_expire").delay()
    finally:
        app.conf.task_always_eager = eager
    assert result.successful(), result.traceback

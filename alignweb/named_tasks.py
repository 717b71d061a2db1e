"""A Celery task named rather than imported, for the services that queue work.

Tasks are thin adapters on top of the services (they take ids and call one), so a service that
queues a task must not import the module that defines it: the import would point up, and the two
would form a cycle. A service names its task instead (``named_task("training.tasks.train_run")``)
and calls ``delay_on_commit`` as on the task itself. Where the task is registered (a worker, or a
process that imported the tasks module) it is sent through it, routes, eager mode and all;
elsewhere Celery sends it by name, with the same routes (``CELERY_TASK_ROUTES`` match names).
"""

import functools

from django.db import transaction

from alignweb.celery import app


class NamedTask:
    def __init__(self, name: str) -> None:
        self.name = name

    def delay(self, *args):
        if app.conf.task_always_eager and self.name not in app.tasks:
            # Running tasks in-process needs their code: import the apps' tasks modules.
            app.loader.import_default_modules()
        return app.signature(self.name, args=args).delay()

    def delay_on_commit(self, *args) -> None:
        transaction.on_commit(functools.partial(self.delay, *args))


def named_task(name: str) -> NamedTask:
    return NamedTask(name)

"""Celery binds our tasks to our app in every Django process, and ``celery -A alignweb`` finds it,
though ``alignweb/__init__.py`` imports nothing (the ML core imports the package). Each check runs
in a fresh interpreter: this one may have imported ``alignweb.celery`` already."""

import os
import subprocess
import sys


def run(code: str) -> str:
    env = {**os.environ, "CELERY_BROKER_URL": "redis://127.0.0.1:1/9"}  # never reached: nothing is sent
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_tasks_of_a_django_process_go_to_our_app_and_its_broker():
    out = run(
        "import django, celery\n"
        "django.setup()\n"
        "from annotation.tasks import export_run_task\n"
        "conf = export_run_task.app.conf\n"
        "print(celery.current_app.main, export_run_task.app.main, conf.broker_url, conf.task_acks_late)\n"
    )
    # acks_late is set only in our Django settings: the task reads its configuration from them.
    assert out.split() == ["alignweb", "alignweb", "redis://127.0.0.1:1/9", "True"]


def test_celery_finds_the_app_by_the_package_name_with_every_task():
    out = run(
        "from celery.app.utils import find_app\n"
        "app = find_app('alignweb')\n"
        "app.loader.import_default_modules()\n"
        "print(app.main, sorted(name for name in app.tasks if not name.startswith('celery.')))\n"
    )
    assert out.startswith("alignweb ")
    assert "'annotation.export_run'" in out and "'training.tasks.train_run'" in out

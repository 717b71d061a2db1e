"""Two imports of the same file at the same moment (PostgreSQL) both succeed and store one copy."""

import io
import json
import threading

import pytest
from django.db import connections

from annotation.models import Comparison, ComparisonResponse, Prompt, Response
from annotation.services.imports import preferences_import

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = "".join(
    json.dumps({"prompt": f"Question {i}?", "chosen": f"Good {i}", "rejected": f"Bad {i}"}) + "\n"
    for i in range(300)
).encode()


def test_simultaneous_imports_of_one_file_store_each_comparison_once(project):
    start, errors = threading.Barrier(2), []

    def run() -> None:
        try:
            start.wait()
            preferences_import(
                project=project, fmt="trl", file=io.BytesIO(ROWS), filename="f.jsonl", user=None
            )
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Prompt.objects.filter(project=project).count() == 300
    assert Response.objects.filter(prompt__project=project).count() == 600
    assert Comparison.objects.filter(project=project).count() == 300
    assert ComparisonResponse.objects.filter(comparison__project=project).count() == 600

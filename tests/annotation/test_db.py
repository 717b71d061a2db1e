"""The prepared cursor of the hot statements."""

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from annotation.db import prepared_cursor
from annotation.services.judgements import judgement_submit
from annotation.services.queue import comparison_next_for_annotator
from tests.factories import ComparisonFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def prepared(marker: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{marker}%"])
        return cursor.fetchone()[0]


def test_it_prepares_a_statement_once_and_reuses_it():
    for value in (1, 2, 3):
        with prepared_cursor() as cursor:
            cursor.execute("SELECT /* test:reuse */ %s::integer + 1", [value])
            assert cursor.fetchone() == (value + 1,)
    assert prepared("test:reuse") == 1


def test_the_vote_statements_are_prepared():
    membership = MembershipFactory()
    project, annotator = membership.project, membership.user
    ComparisonFactory.create_pair(project=project)
    assignment = comparison_next_for_annotator(project=project, annotator=annotator)
    judgement_submit(
        assignment_id=assignment.pk,
        annotator=annotator,
        choice_shown="left",
        strength=1,
        rationale="",
        duration_ms=None,
    )
    assert prepared("/* queue:next */") >= 1  # one per set of parameter types
    assert prepared("/* judgement:submit */") >= 1


def test_database_errors_come_out_as_djangos():
    with pytest.raises(DataError), transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute("SELECT /* test:error */ 1 / %s::integer", [0])


def test_while_queries_are_logged_it_is_djangos_cursor_and_the_log_shows_the_values():
    with CaptureQueriesContext(connection) as queries, prepared_cursor() as cursor:
        cursor.execute("SELECT /* test:logged */ %s::integer", [7])
    assert [query["sql"] for query in queries] == ["SELECT /* test:logged */ 7::integer"]
    assert prepared("test:logged") == 0


def test_times_come_back_in_utc():
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", ["2026-01-02 03:04:05+02"])
        (value,) = cursor.fetchone()
    assert value.utcoffset().total_seconds() == 0
    assert value.hour == 1

"""The queue under real concurrency, and its query plan.

Each thread is one annotator with its own database connection, as gunicorn threads would be.
"""

import re
import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections, transaction
from django.db.models import Count

from annotation.models import Assignment, AssignmentStatus, Comparison, Judgement, JudgementTally
from annotation.services.judgements import judgement_submit
from annotation.services.queue import comparison_next_for_annotator
from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory


def run_in_threads(count, target):
    """Run ``target(index)`` in ``count`` threads started together; return the errors they raised."""
    errors = []
    barrier = threading.Barrier(count)

    def worker(index):
        try:
            barrier.wait()
            target(index)
        except Exception as error:
            errors.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_never_exceed_overlap_nor_judge_twice():
    project = ProjectFactory(overlap=2)
    comparisons = [ComparisonFactory.create_pair(project=project) for _ in range(25)]
    annotators = [MembershipFactory(project=project).user for _ in range(8)]

    def annotate(index):
        annotator = annotators[index]
        while (assignment := comparison_next_for_annotator(project=project, annotator=annotator)) is not None:
            judgement_submit(
                assignment_id=assignment.pk,
                annotator=annotator,
                choice_shown="left",
                strength=0,
                rationale="",
                duration_ms=10,
            )

    assert run_in_threads(len(annotators), annotate) == []

    per_comparison = Counter(Judgement.objects.values_list("comparison_id", flat=True))
    assert max(per_comparison.values()) <= 2
    assert sum(per_comparison.values()) == 2 * len(comparisons)  # all the work got done
    twice = Judgement.objects.values("comparison", "annotator").annotate(n=Count("id")).filter(n__gt=1)
    assert not twice.exists()
    for comparison in Comparison.objects.filter(project=project):
        assert comparison.judgement_count == per_comparison[comparison.pk]
        assert comparison.open_slots == 0
    assert not Assignment.objects.filter(status=AssignmentStatus.LEASED).exists()


@pytest.mark.django_db(transaction=True)
def test_one_annotator_asking_from_two_tabs_at_once_gets_one_lease():
    project = ProjectFactory()
    for _ in range(5):
        ComparisonFactory.create_pair(project=project)
    annotator = MembershipFactory(project=project).user
    leased = []

    errors = run_in_threads(
        4, lambda _: leased.append(comparison_next_for_annotator(project=project, annotator=annotator).pk)
    )

    assert errors == []
    assert len(set(leased)) == 1
    assert Assignment.objects.filter(annotator=annotator).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_double_submit_racing_itself_stores_one_judgement():
    project = ProjectFactory()
    comparison = ComparisonFactory.create_pair(project=project)
    annotator = MembershipFactory(project=project).user
    assignment = comparison_next_for_annotator(project=project, annotator=annotator)
    created = []

    def submit(_):
        _, new = judgement_submit(
            assignment_id=assignment.pk,
            annotator=annotator,
            choice_shown="right",
            strength=1,
            rationale="",
            duration_ms=5,
        )
        created.append(new)

    assert run_in_threads(4, submit) == []
    assert sorted(created) == [False, False, False, True]
    assert Judgement.objects.count() == 1
    assert Comparison.objects.get(pk=comparison.pk).judgement_count == 1
    assert JudgementTally.objects.get(annotator=annotator, project=project).judgements == 1


def seed_comparisons(project, count):
    """``count`` open comparisons on one prompt, inserted by the database itself (fast)."""
    prompt = ComparisonFactory.create_pair(project=project).prompt
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO annotation_comparison (project_id, prompt_id, key, open_slots, judgement_count,
                priority, prior_choice, prior_source, is_gold, gold_choice, created_at)
            SELECT %s, %s, md5(i::text), %s, 0, random(), '', '', false, '', now()
            FROM generate_series(1, %s) AS i
            """,
            [project.pk, prompt.pk, project.overlap, count],
        )
        cursor.execute("ANALYZE annotation_comparison")
        cursor.execute("ANALYZE annotation_assignment")


def plans_inside_functions(action, *, settings=()):
    """Run ``action()`` and return {marker: [plan, ...]} for the statements run inside PL/pgSQL.

    auto_explain logs the plan of every nested statement; with client_min_messages = log the log
    lines come back to this connection as notices. Plans are keyed by their /* marker */.
    """
    raw = connection.connection
    notices = []

    def keep(diagnostic):
        notices.append(diagnostic.message_primary or "")

    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        for setting in (
            "auto_explain.log_min_duration = 0",
            "auto_explain.log_nested_statements = on",
            "client_min_messages = log",
            *settings,
        ):
            cursor.execute(f"SET LOCAL {setting}")
    raw.add_notice_handler(keep)
    try:
        action()
    finally:
        raw.remove_notice_handler(keep)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL client_min_messages = notice")
            cursor.execute("SET LOCAL auto_explain.log_min_duration = -1")
    plans = {}
    for notice in notices:
        marker = re.search(r"/\* ([a-z:-]+) \*/", notice)
        if "Query Text:" in notice and marker:
            plans.setdefault(marker.group(1), []).append(notice)
    return plans


@pytest.mark.django_db
def test_next_walks_the_queue_index_not_the_table(project):
    # Another big project shares the table, as it would in production.
    seed_comparisons(ProjectFactory(), 30_000)
    seed_comparisons(project, 30_000)
    # Seven annotators, so the function's cached statements pass PostgreSQL's five custom plans
    # and a generic plan, if it chose one, is checked too.
    annotators = [MembershipFactory(project=project).user for _ in range(7)]

    def lease_for_everyone():
        for annotator in annotators:
            assert comparison_next_for_annotator(project=project, annotator=annotator, with_progress=True)

    plans = plans_inside_functions(lease_for_everyone)

    assert len(plans["queue:candidate"]) == len(annotators)
    for plan in plans["queue:candidate"]:
        assert "comparison_queue" in plan, plan
        assert "Seq Scan on annotation_comparison" not in plan, plan
        assert "Sort" not in plan, plan  # the index gives the order; nothing sorts the project's items
    assert len(plans["queue:progress"]) == len(annotators)
    for plan in plans["queue:progress"]:
        assert "comparison_queue" in plan, plan
        assert "Seq Scan on annotation_comparison" not in plan, plan
        assert "hashed SubPlan" in plan, plan  # touched items are looked up in a hash, not rescanned
    assert len(plans["queue:progress-done"]) == len(annotators)
    for plan in plans["queue:progress-done"]:
        # One probe of the tally's unique index; their judgements are not counted.
        assert "one_tally_per_annotator_and_project" in plan, plan
        assert "annotation_judgement " not in plan, plan


@pytest.mark.django_db
def test_the_lease_sweep_walks_the_expiry_index(project, annotator):
    seed_comparisons(project, 2_000)
    plans = plans_inside_functions(
        lambda: comparison_next_for_annotator(project=project, annotator=annotator),
        settings=["enable_seqscan = off"],  # a tiny table would be scanned; ask what it can use
    )
    assert len(plans["queue:stale-leases"]) == 1
    assert "live_lease_expiry" in plans["queue:stale-leases"][0], plans["queue:stale-leases"][0]


@pytest.mark.django_db(transaction=True)
def test_leases_lapsing_skips_and_submits_racing_keep_every_counter_true():
    """Short leases run out under the annotators' hands while others sweep and take them over."""
    import random
    import time

    from annotation.services.errors import Conflict
    from annotation.services.queue import assignment_skip

    project = ProjectFactory(overlap=2, lease_seconds=1)
    for _ in range(20):
        ComparisonFactory.create_pair(project=project)
    annotators = [MembershipFactory(project=project).user for _ in range(6)]
    conflicts = []

    def annotate(index):
        rng = random.Random(index)
        annotator = annotators[index]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assignment = comparison_next_for_annotator(project=project, annotator=annotator)
            if assignment is None:
                return
            roll = rng.random()
            if roll < 0.15:
                assignment_skip(assignment_id=assignment.pk, annotator=annotator)
                continue
            if roll < 0.35:
                time.sleep(1.1)  # the lease lapses; someone may take the slot meanwhile
            try:
                judgement_submit(
                    assignment_id=assignment.pk,
                    annotator=annotator,
                    choice_shown="tie",
                    strength=None,
                    rationale="",
                    duration_ms=1,
                )
            except Conflict:
                # Refused: nothing stored. (Checked now, because the item may later be leased to them
                # again, under the same assignment, and then judged for real.)
                conflicts.append(Judgement.objects.filter(assignment_id=assignment.pk).exists())

    assert run_in_threads(len(annotators), annotate) == []

    judged = Counter(Judgement.objects.values_list("comparison_id", flat=True))
    held = Counter(
        Assignment.objects.filter(status=AssignmentStatus.LEASED).values_list("comparison_id", flat=True)
    )
    for comparison in Comparison.objects.filter(project=project):
        assert judged[comparison.pk] <= 2
        assert comparison.judgement_count == judged[comparison.pk]
        assert comparison.open_slots == 2 - judged[comparison.pk] - held[comparison.pk], comparison.pk
    twice = Judgement.objects.values("comparison", "annotator").annotate(n=Count("id")).filter(n__gt=1)
    assert not twice.exists()
    assert not any(conflicts), "a refused submit stored a judgement"
    tally = JudgementTally.objects.filter(project=project, judgements__gt=0)
    assert dict(tally.values_list("annotator_id", "judgements")) == Counter(
        Judgement.objects.values_list("annotator_id", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_open_items_locked_for_a_moment_are_waited_for_not_reported_as_an_empty_queue():
    """A bulk priority update (the active scorer re-ordering the queue) holds the row locks of every
    pending comparison for a moment; "next" must not tell an annotator the queue is empty then."""
    project = ProjectFactory()
    for _ in range(3):
        ComparisonFactory.create_pair(project=project)
    annotator = MembershipFactory(project=project).user
    locked, release = threading.Event(), threading.Event()

    def hold_every_row_lock():
        try:
            with transaction.atomic():
                list(Comparison.objects.filter(project=project).select_for_update())
                locked.set()
                release.wait(timeout=10)
                time.sleep(0.1)  # still held while "next" runs
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_every_row_lock)
    holder.start()
    assert locked.wait(timeout=10)
    release.set()
    served = comparison_next_for_annotator(project=project, annotator=annotator)
    holder.join(timeout=10)

    assert served is not None
    assert Assignment.objects.filter(annotator=annotator, status=AssignmentStatus.LEASED).count() == 1

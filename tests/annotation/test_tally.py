"""JudgementTally: the database's own count of each annotator's judgements per project (kept by
annotation/sql/judgement_tally.sql), which "next" reads as "done". Every test compares it with
a real count of the judgements."""

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count, ProtectedError
from django.urls import reverse

from annotation.models import Judgement, JudgementTally
from annotation.selectors import project_progress
from annotation.services.judgements import judgement_submit
from annotation.services.queue import comparison_next_for_annotator
from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def real_counts() -> dict:
    rows = (
        Judgement.objects.values("annotator_id", "comparison__project_id")
        .annotate(n=Count("id"))
        .values_list("annotator_id", "comparison__project_id", "n")
    )
    return {(annotator, project): n for annotator, project, n in rows}


def tallies() -> dict:
    """Non-zero tally rows (a row may stay at 0 once its judgements are deleted)."""
    rows = JudgementTally.objects.values_list("annotator_id", "project_id", "judgements")
    return {(annotator, project): n for annotator, project, n in rows if n}


def assert_tally(expected: dict) -> None:
    """The tally, a real count of the judgements and ``expected`` all agree."""
    assert tallies() == real_counts() == expected


def judge_next(project, annotator):
    assignment = comparison_next_for_annotator(project=project, annotator=annotator)
    judgement, _ = judgement_submit(
        assignment_id=assignment.pk,
        annotator=annotator,
        choice_shown="left",
        strength=0,
        rationale="",
        duration_ms=1000,
    )
    return judgement


@pytest.fixture
def two_projects(project, annotator):
    """``project`` and another one, both with items; ``annotator`` and ``bob`` are in both."""
    other = ProjectFactory()
    MembershipFactory(project=other, user=annotator)
    bob = MembershipFactory(project=project, user__username="bob").user
    MembershipFactory(project=other, user=bob)
    for each in (project, other):
        for _ in range(4):
            ComparisonFactory.create_pair(project=each)
    return project, other, bob


def test_each_submit_counts_once_and_a_replay_not_again(two_projects, annotator):
    project, other, bob = two_projects
    judgements = [judge_next(project, annotator) for _ in range(3)]
    judge_next(other, annotator)
    judge_next(project, bob)

    judgement_submit(  # a replay of the last one: nothing new is stored, nothing counted
        assignment_id=judgements[-1].assignment_id,
        annotator=annotator,
        choice_shown="left",
        strength=0,
        rationale="",
        duration_ms=1000,
    )

    assert_tally(
        {
            (annotator.pk, project.pk): 3,
            (annotator.pk, other.pk): 1,
            (bob.pk, project.pk): 1,
        }
    )


def test_progress_done_is_the_tally_on_both_paths(two_projects, annotator):
    project, other, _ = two_projects
    for _ in range(2):
        judge_next(project, annotator)
    judge_next(other, annotator)

    served = comparison_next_for_annotator(project=project, annotator=annotator, with_progress=True)

    # On PostgreSQL "next" reads it inside annotation_queue_next, project_progress in its own SQL.
    assert served.progress["done"] == 2
    assert served.progress == project_progress(project=project, annotator=annotator)
    # It is the tally that is read, not a count: a tally set by hand shows through on both paths.
    JudgementTally.objects.filter(annotator=annotator, project=project).update(judgements=7)
    assert project_progress(project=project, annotator=annotator)["done"] == 7
    again = comparison_next_for_annotator(project=project, annotator=annotator, with_progress=True)
    assert again.progress["done"] == 7


def test_no_tally_row_reads_as_zero_done(project, annotator):
    ComparisonFactory.create_pair(project=project)

    served = comparison_next_for_annotator(project=project, annotator=annotator, with_progress=True)

    assert not JudgementTally.objects.exists()
    assert served.progress["done"] == 0
    assert project_progress(project=project, annotator=annotator)["done"] == 0


def test_deleting_a_judgement_or_its_comparison_takes_it_off(two_projects, annotator):
    project, other, bob = two_projects
    first = judge_next(project, annotator)
    judge_next(project, annotator)
    judge_next(other, annotator)
    judge_next(other, bob)

    first.delete()
    assert_tally(
        {
            (annotator.pk, project.pk): 1,
            (annotator.pk, other.pk): 1,
            (bob.pk, other.pk): 1,
        }
    )

    Judgement.objects.get(annotator=bob).comparison.delete()  # its judgements go with it
    assert_tally({(annotator.pk, project.pk): 1, (annotator.pk, other.pk): 1})


def test_deleting_a_project_deletes_its_tally_rows_and_leaves_the_others(two_projects, annotator):
    project, other, bob = two_projects
    judge_next(project, annotator)
    judge_next(project, bob)
    judge_next(other, annotator)

    project.delete()  # its judgements and tally rows go with it, in an order of Django's choosing

    assert not JudgementTally.objects.filter(project_id=project.pk).exists()
    assert_tally({(annotator.pk, other.pk): 1})


def test_a_delete_never_brings_back_a_tally_row_deleted_before_it(two_projects, annotator):
    # Django deletes a project's tally rows and its judgements in an order of its choosing; the
    # judgements going second must not recreate the rows (they would point at a deleted project).
    project, _, bob = two_projects
    judge_next(project, annotator)
    judge_next(project, bob)

    JudgementTally.objects.filter(project=project).delete()
    Judgement.objects.filter(comparison__project=project).delete()

    assert not JudgementTally.objects.filter(project=project).exists()


def test_a_user_with_judgements_is_protected_and_their_tally_goes_with_them(two_projects, annotator):
    project, other, _ = two_projects
    judge_next(project, annotator)
    kept = judge_next(other, annotator)

    with pytest.raises(ProtectedError):
        annotator.delete()
    assert tallies() == real_counts()

    Judgement.objects.filter(comparison__project=project).delete()
    project.delete()
    kept.delete()  # their last judgement: the row stays, at 0
    assert JudgementTally.objects.get(annotator=annotator, project=other).judgements == 0
    user_id = annotator.pk
    annotator.delete()

    assert not get_user_model().objects.filter(pk=user_id).exists()
    assert not JudgementTally.objects.filter(annotator_id=user_id).exists()


def test_an_admin_moving_a_judgement_to_another_annotator_moves_its_count(client, two_projects, annotator):
    project, _, bob = two_projects
    judgement = judge_next(project, annotator)
    judge_next(project, annotator)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    response = client.post(
        reverse("admin:annotation_judgement_change", args=[judgement.pk]),
        {
            "comparison": judgement.comparison_id,
            "annotator": bob.pk,
            "assignment": judgement.assignment_id,
            "choice": judgement.choice,
            "strength": judgement.strength,
            "rationale": "",
            "duration_ms": judgement.duration_ms,
            "display_order": "[0, 1]",
            "left_response": judgement.left_response_id,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Judgement.objects.get(pk=judgement.pk).annotator_id == bob.pk
    assert_tally({(annotator.pk, project.pk): 1, (bob.pk, project.pk): 1})


def test_moving_a_judgement_or_its_comparison_to_another_project_moves_its_count(two_projects, annotator):
    project, other, bob = two_projects
    judgement = judge_next(project, annotator)
    judge_next(project, bob)
    elsewhere = ComparisonFactory.create_pair(project=other)

    Judgement.objects.filter(pk=judgement.pk).update(comparison=elsewhere)
    assert_tally({(annotator.pk, other.pk): 1, (bob.pk, project.pk): 1})

    bobs = Judgement.objects.get(annotator=bob)
    comparison = bobs.comparison
    comparison.project = other
    comparison.save()  # every column, project_id included
    assert_tally({(annotator.pk, other.pk): 1, (bob.pk, other.pk): 1})

    comparison.save()  # unchanged project: nothing moves
    assert tallies() == real_counts()


def test_the_admin_shows_the_tally_on_the_project_page_read_only(client, two_projects, annotator):
    project, _, _ = two_projects
    judge_next(project, annotator)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    html = client.get(reverse("admin:annotation_project_change", args=[project.pk])).content.decode()

    assert "Judgements per annotator" in html
    assert 'name="judgement_tallies-0-judgements"' not in html  # shown, not an input

"""Submitting a judgement: display sides to canonical positions, the label scheme, replays, leases."""

from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from annotation.models import Assignment, AssignmentStatus, Comparison, Judgement, RationalePolicy
from annotation.services.errors import Conflict, ValidationFailed
from annotation.services.judgements import judgement_submit
from annotation.services.queue import assignment_skip, comparison_next_for_annotator, leases_expire
from tests.factories import ComparisonFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def comparison(project):
    return ComparisonFactory.create_pair(project=project, texts=("I am A", "I am B"))


@pytest.fixture
def assignment(project, annotator, comparison):
    return comparison_next_for_annotator(project=project, annotator=annotator)


def submit(assignment, annotator, choice="left", strength=1, rationale="", duration_ms=1500, **kwargs):
    return judgement_submit(
        assignment_id=assignment.pk,
        annotator=annotator,
        choice_shown=choice,
        strength=strength,
        rationale=rationale,
        duration_ms=duration_ms,
        **kwargs,
    )


def shown_as(assignment, order):
    Assignment.objects.filter(pk=assignment.pk).update(display_order=order)


@pytest.mark.parametrize(
    ("order", "shown", "canonical", "left_text"),
    [
        ([0, 1], "left", "a", "I am A"),
        ([0, 1], "right", "b", "I am A"),
        ([1, 0], "left", "b", "I am B"),
        ([1, 0], "right", "a", "I am B"),
    ],
)
def test_it_maps_the_side_shown_to_the_canonical_choice(
    assignment, annotator, order, shown, canonical, left_text
):
    shown_as(assignment, order)

    judgement, created = submit(assignment, annotator, choice=shown)

    assert created
    assert judgement.choice == canonical
    assert judgement.display_order == order
    assert judgement.left_response.text == left_text


def test_it_stores_strength_rationale_and_duration(assignment, annotator, comparison):
    judgement, _ = submit(assignment, annotator, strength=2, rationale="  B rambles.  ", duration_ms=4200)

    judgement.refresh_from_db()
    assert (judgement.strength, judgement.rationale, judgement.duration_ms) == (2, "B rambles.", 4200)
    assert Comparison.objects.get(pk=comparison.pk).judgement_count == 1
    assert Assignment.objects.get(pk=assignment.pk).status == AssignmentStatus.SUBMITTED


def test_a_replayed_submit_stores_one_judgement_and_returns_it(assignment, annotator, comparison):
    first, created = submit(assignment, annotator, choice="left")
    again, created_again = submit(assignment, annotator, choice="right")

    assert created and not created_again
    assert again.pk == first.pk
    assert again.choice == first.choice
    assert Judgement.objects.count() == 1
    assert Comparison.objects.get(pk=comparison.pk).judgement_count == 1


def test_ties_and_both_bad_are_stored_without_strength(assignment, annotator):
    judgement, _ = submit(assignment, annotator, choice="tie", strength=None)
    assert judgement.choice == "tie"
    assert judgement.strength is None


@pytest.mark.parametrize(
    ("project_change", "kwargs", "field"),
    [
        ({"allow_tie": False}, {"choice": "tie", "strength": None}, "choice"),
        ({"allow_both_bad": False}, {"choice": "both_bad", "strength": None}, "choice"),
        ({}, {"choice": "A"}, "choice"),
        ({}, {"strength": 3}, "strength"),
        ({}, {"strength": -1}, "strength"),
        ({}, {"strength": None}, "strength"),
        ({}, {"strength": True}, "strength"),
        ({}, {"choice": "tie", "strength": 1}, "strength"),
        ({"strength_scale": []}, {"strength": 0}, "strength"),
        ({"rationale": RationalePolicy.REQUIRED}, {"rationale": "   "}, "rationale"),
        ({"rationale": RationalePolicy.OFF}, {"rationale": "because"}, "rationale"),
        ({}, {"rationale": "x" * 10_001}, "rationale"),
        ({}, {"duration_ms": -5}, "duration_ms"),
    ],
)
def test_it_refuses_a_judgement_the_label_scheme_does_not_allow(
    project, assignment, annotator, project_change, kwargs, field
):
    for name, value in project_change.items():
        setattr(project, name, value)
    project.save()

    with pytest.raises(ValidationFailed) as error:
        submit(assignment, annotator, **kwargs)

    assert error.value.field == field
    assert error.value.message
    assert not Judgement.objects.exists()
    assert Assignment.objects.get(pk=assignment.pk).status == AssignmentStatus.LEASED


def test_a_project_without_a_strength_scale_takes_judgements_without_strength(project, assignment, annotator):
    project.strength_scale = []
    project.save()
    judgement, _ = submit(assignment, annotator, strength=None)
    assert judgement.strength is None


def test_someone_elses_assignment_is_a_404(project, assignment):
    other = MembershipFactory(project=project, user__username="bob").user
    with pytest.raises(Http404):
        submit(assignment, other)


def test_an_annotator_removed_from_the_project_cannot_submit(project, assignment, annotator):
    project.memberships.filter(user=annotator).delete()
    with pytest.raises(Http404):
        submit(assignment, annotator)


def test_an_expired_lease_whose_slot_is_free_may_still_be_submitted(
    project, assignment, annotator, comparison
):
    leases_expire(now=timezone.now() + timedelta(seconds=project.lease_seconds + 1))
    assert Comparison.objects.get(pk=comparison.pk).open_slots == 1

    _, created = submit(assignment, annotator)

    assert created
    comparison.refresh_from_db()
    assert (comparison.open_slots, comparison.judgement_count) == (0, 1)


def test_a_lapsed_lease_the_sweep_has_not_reached_is_still_the_annotators(
    project, assignment, annotator, comparison
):
    Assignment.objects.filter(pk=assignment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    submit(assignment, annotator)

    comparison.refresh_from_db()
    assert (comparison.open_slots, comparison.judgement_count) == (0, 1)


def test_an_expired_lease_taken_over_by_others_is_a_conflict(project, assignment, annotator, comparison):
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 1)
    bob = MembershipFactory(project=project, user__username="bob").user
    assert comparison_next_for_annotator(project=project, annotator=bob, now=later).comparison == comparison

    with pytest.raises(Conflict) as error:
        submit(assignment, annotator)

    assert "other annotators" in error.value.message
    assert not Judgement.objects.exists()
    assert Comparison.objects.get(pk=comparison.pk).open_slots == 0


def test_a_skipped_item_can_be_judged_while_its_slot_is_free(assignment, annotator, comparison):
    assignment_skip(assignment_id=assignment.pk, annotator=annotator)
    submit(assignment, annotator)
    comparison.refresh_from_db()
    assert (comparison.open_slots, comparison.judgement_count) == (0, 1)


def test_a_judgement_removed_after_submitting_is_a_conflict_not_a_second_judgement(assignment, annotator):
    submit(assignment, annotator)
    Judgement.objects.all().delete()

    with pytest.raises(Conflict, match="removed"):
        submit(assignment, annotator)
    assert not Judgement.objects.exists()

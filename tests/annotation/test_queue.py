"""The assignment queue: what "next" serves, leases, expiry, skips."""

import random
from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from annotation.models import Assignment, AssignmentStatus, Comparison
from annotation.services.errors import Conflict
from annotation.services.judgements import judgement_submit
from annotation.services.queue import assignment_skip, comparison_next_for_annotator, leases_expire
from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def member(project, username):
    return MembershipFactory(project=project, user__username=username).user


def judge(assignment, annotator, choice="left"):
    return judgement_submit(
        assignment_id=assignment.pk,
        annotator=annotator,
        choice_shown=choice,
        strength=0 if choice in ("left", "right") else None,
        rationale="",
        duration_ms=1000,
    )


def slots(comparison):
    return Comparison.objects.get(pk=comparison.pk).open_slots


def test_it_serves_the_highest_priority_first_then_the_oldest(project, annotator):
    low = ComparisonFactory.create_pair(project=project, priority=0.1)
    high = ComparisonFactory.create_pair(project=project, priority=0.9)
    ComparisonFactory.create_pair(project=project, priority=0.1)

    first = comparison_next_for_annotator(project=project, annotator=annotator)
    assert first.comparison == high
    judge(first, annotator)
    assert comparison_next_for_annotator(project=project, annotator=annotator).comparison == low


def test_it_returns_the_live_lease_instead_of_a_second_one(project, annotator):
    ComparisonFactory.create_pair(project=project)
    ComparisonFactory.create_pair(project=project)

    first = comparison_next_for_annotator(project=project, annotator=annotator)
    again = comparison_next_for_annotator(project=project, annotator=annotator)

    assert again.pk == first.pk
    assert Assignment.objects.filter(annotator=annotator).count() == 1


def test_a_lease_takes_a_slot_and_a_judgement_keeps_it(project, annotator):
    project.overlap = 2
    project.save()
    comparison = ComparisonFactory.create_pair(project=project)
    assert slots(comparison) == 2

    assignment = comparison_next_for_annotator(project=project, annotator=annotator)
    assert slots(comparison) == 1
    judge(assignment, annotator)

    comparison.refresh_from_db()
    assert (comparison.open_slots, comparison.judgement_count) == (1, 1)


def test_it_never_serves_an_item_the_annotator_judged(project, annotator):
    project.overlap = 3
    project.save()
    ComparisonFactory.create_pair(project=project)

    judge(comparison_next_for_annotator(project=project, annotator=annotator), annotator)

    assert comparison_next_for_annotator(project=project, annotator=annotator) is None


def test_it_never_serves_an_item_the_annotator_skipped(project, annotator):
    project.overlap = 3
    project.save()
    comparison = ComparisonFactory.create_pair(project=project)

    assignment = comparison_next_for_annotator(project=project, annotator=annotator)
    assignment_skip(assignment_id=assignment.pk, annotator=annotator)

    assert slots(comparison) == 3  # the slot went back for others
    assert comparison_next_for_annotator(project=project, annotator=annotator) is None


def test_it_stops_serving_an_item_once_overlap_is_reached_with_judgements_and_leases(project):
    project.overlap = 2
    project.save()
    comparison = ComparisonFactory.create_pair(project=project)
    ann, bob, cat = (member(project, name) for name in ("ann", "bob", "cat"))

    judge(comparison_next_for_annotator(project=project, annotator=ann), ann)
    held = comparison_next_for_annotator(project=project, annotator=bob)

    assert held.comparison == comparison
    assert comparison_next_for_annotator(project=project, annotator=cat) is None
    assert slots(comparison) == 0


def test_an_expired_lease_gives_the_item_back(project):
    comparison = ComparisonFactory.create_pair(project=project)
    ann, bob = member(project, "ann"), member(project, "bob")
    abandoned = comparison_next_for_annotator(project=project, annotator=ann)
    assert comparison_next_for_annotator(project=project, annotator=bob) is None

    later = timezone.now() + timedelta(seconds=project.lease_seconds + 1)
    taken_over = comparison_next_for_annotator(project=project, annotator=bob, now=later)

    assert taken_over.comparison == comparison
    abandoned.refresh_from_db()
    assert abandoned.status == AssignmentStatus.EXPIRED
    assert slots(comparison) == 0


def test_an_annotator_gets_their_own_expired_item_again_in_the_same_order(project, annotator):
    ComparisonFactory.create_pair(project=project)
    first = comparison_next_for_annotator(project=project, annotator=annotator)

    later = timezone.now() + timedelta(seconds=project.lease_seconds + 1)
    again = comparison_next_for_annotator(project=project, annotator=annotator, now=later)

    assert again.pk == first.pk
    assert again.status == AssignmentStatus.LEASED
    assert again.display_order == first.display_order
    assert again.expires_at > later


def test_leases_expire_counts_and_gives_slots_back(project):
    comparisons = [ComparisonFactory.create_pair(project=project) for _ in range(3)]
    for name in ("ann", "bob", "cat"):
        comparison_next_for_annotator(project=project, annotator=member(project, name))
    assert [slots(c) for c in comparisons] == [0, 0, 0]

    assert leases_expire() == 0
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 1)
    assert leases_expire(now=later, limit=None) == 3
    assert [slots(c) for c in comparisons] == [1, 1, 1]


def test_sides_are_randomised_per_assignment_and_recorded(project):
    project.overlap = 1
    project.save()
    for _ in range(30):
        ComparisonFactory.create_pair(project=project)
    annotator = member(project, "ann")
    rng = random.Random(7)
    orders = []
    for _ in range(30):
        assignment = comparison_next_for_annotator(project=project, annotator=annotator, rng=rng)
        orders.append(tuple(assignment.display_order))
        judge(assignment, annotator)

    assert set(orders) == {(0, 1), (1, 0)}
    assert Assignment.objects.filter(display_order=[1, 0]).count() == orders.count((1, 0))


class FixedDraw(random.Random):
    def __init__(self, draw):
        super().__init__(0)
        self.draw = draw

    def random(self):
        return self.draw


def gold_pair(project):
    return ComparisonFactory.create_pair(project=project, is_gold=True, gold_choice="a", priority=5)


def test_gold_items_are_served_when_the_draw_falls_under_gold_rate(project, annotator):
    project.gold_rate = 0.2
    project.save()
    regular = ComparisonFactory.create_pair(project=project)
    gold = gold_pair(project)

    served = comparison_next_for_annotator(project=project, annotator=annotator, rng=FixedDraw(0.1))
    assert served.comparison == gold
    judge(served, annotator)
    served = comparison_next_for_annotator(project=project, annotator=annotator, rng=FixedDraw(0.9))
    assert served.comparison == regular


def test_regular_items_come_first_above_gold_rate_and_gold_is_the_fallback(project, annotator):
    project.gold_rate = 0.2
    project.save()
    regular = ComparisonFactory.create_pair(project=project)
    gold = gold_pair(project)

    served = comparison_next_for_annotator(project=project, annotator=annotator, rng=FixedDraw(0.5))
    assert served.comparison == regular
    judge(served, annotator)
    assert (
        comparison_next_for_annotator(project=project, annotator=annotator, rng=FixedDraw(0.5)).comparison
        == gold
    )


def test_a_project_without_a_gold_rate_never_serves_gold(project, annotator):
    gold_pair(project)
    assert comparison_next_for_annotator(project=project, annotator=annotator, rng=FixedDraw(0.0)) is None


def test_it_serves_nothing_from_another_project(project, annotator):
    ComparisonFactory.create_pair(project=ProjectFactory())
    assert comparison_next_for_annotator(project=project, annotator=annotator) is None


def test_a_lease_in_one_project_does_not_block_another(project, annotator):
    other = ProjectFactory()
    MembershipFactory(project=other, user=annotator)
    ComparisonFactory.create_pair(project=project)
    ComparisonFactory.create_pair(project=other)

    here = comparison_next_for_annotator(project=project, annotator=annotator)
    there = comparison_next_for_annotator(project=other, annotator=annotator)

    assert here.comparison.project == project
    assert there.comparison.project == other


def test_skipping_someone_elses_assignment_is_a_404(project, annotator):
    ComparisonFactory.create_pair(project=project)
    assignment = comparison_next_for_annotator(project=project, annotator=annotator)
    with pytest.raises(Http404):
        assignment_skip(assignment_id=assignment.pk, annotator=member(project, "bob"))


def test_skipping_twice_is_harmless_and_returns_the_slot_once(project, annotator):
    comparison = ComparisonFactory.create_pair(project=project)
    assignment = comparison_next_for_annotator(project=project, annotator=annotator)
    assignment_skip(assignment_id=assignment.pk, annotator=annotator)
    assignment_skip(assignment_id=assignment.pk, annotator=annotator)
    assert slots(comparison) == 1


def test_skipping_an_expired_lease_does_not_give_its_slot_back_twice(project, annotator):
    comparison = ComparisonFactory.create_pair(project=project)
    assignment = comparison_next_for_annotator(project=project, annotator=annotator)
    leases_expire(now=timezone.now() + timedelta(seconds=project.lease_seconds + 1))
    assignment_skip(assignment_id=assignment.pk, annotator=annotator)
    assert slots(comparison) == 1


def test_skipping_a_judged_item_is_a_conflict(project, annotator):
    ComparisonFactory.create_pair(project=project)
    assignment = comparison_next_for_annotator(project=project, annotator=annotator)
    judge(assignment, annotator)
    with pytest.raises(Conflict):
        assignment_skip(assignment_id=assignment.pk, annotator=annotator)


def test_the_periodic_task_drains_every_stale_lease(project):
    from annotation.tasks import leases_expire_task

    for _ in range(3):
        ComparisonFactory.create_pair(project=project)
    for name in ("ann", "bob", "cat"):
        comparison_next_for_annotator(project=project, annotator=member(project, name))
    Assignment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert leases_expire_task() == 3
    assert not Assignment.objects.filter(status=AssignmentStatus.LEASED).exists()
    assert sorted(Comparison.objects.values_list("open_slots", flat=True)) == [1, 1, 1]


class Reversing(random.Random):
    """Shuffles by reversing, so the sides it produces are known in advance."""

    def shuffle(self, x):
        x.reverse()


def test_a_comparison_of_three_is_shown_in_the_order_the_shuffle_gives(project, annotator):
    ComparisonFactory.create_pair(project=project, texts=("first", "second", "third"))

    served = comparison_next_for_annotator(project=project, annotator=annotator, rng=Reversing(0))

    assert served.display_order == [2, 1, 0]
    assert [response.text for response in served.shown_responses] == ["third", "second", "first"]
    assert Assignment.objects.get(pk=served.pk).display_order == [2, 1, 0]


@pytest.mark.parametrize("gold_rate", [0.0, 0.5])
def test_progress_served_with_the_item_is_what_project_progress_counts(project, annotator, gold_rate):
    from annotation.selectors import project_progress

    project.gold_rate = gold_rate
    project.overlap = 2
    project.save()
    for _ in range(4):
        ComparisonFactory.create_pair(project=project)
    gold_pair(project)
    regular_first = FixedDraw(0.9)
    other = member(project, "bob")
    judge(comparison_next_for_annotator(project=project, annotator=other, rng=regular_first), other)
    judge(comparison_next_for_annotator(project=project, annotator=annotator, rng=regular_first), annotator)
    skipped = comparison_next_for_annotator(project=project, annotator=annotator, rng=regular_first)
    assignment_skip(assignment_id=skipped.pk, annotator=annotator)

    served = comparison_next_for_annotator(
        project=project, annotator=annotator, rng=regular_first, with_progress=True
    )

    assert served.progress == project_progress(project=project, annotator=annotator)
    assert served.progress["done"] == 1
    # 4 regular items (and 1 gold one where gold is served) less 3 touched, plus the one held.
    assert served.progress["left"] == (3 if gold_rate else 2)


def test_progress_stops_counting_at_the_cap(project, annotator, monkeypatch):
    from annotation import selectors, services

    monkeypatch.setattr(selectors, "PROGRESS_LEFT_CAP", 3)
    monkeypatch.setattr(services.queue, "PROGRESS_LEFT_CAP", 3)
    for _ in range(6):
        ComparisonFactory.create_pair(project=project)

    served = comparison_next_for_annotator(project=project, annotator=annotator, with_progress=True)

    assert served.progress == {"done": 0, "left": 4, "total": 4, "left_capped": True}
    assert served.progress == selectors.project_progress(project=project, annotator=annotator)


def test_next_by_slug_leases_in_that_project_with_the_projects_lease_time(project, annotator):
    from annotation.permissions import ANNOTATE
    from annotation.services.queue import comparison_next_by_slug

    project.lease_seconds = 90
    project.save()
    comparison = ComparisonFactory.create_pair(project=project)
    now = timezone.now()

    role, served = comparison_next_by_slug(
        slug=project.slug, annotator=annotator, allowed=ANNOTATE, now=now, with_progress=True
    )

    assert role == "annotator"
    assert served.comparison == comparison
    assert Assignment.objects.get(pk=served.pk).expires_at == now + timedelta(seconds=90)
    assert served.progress == {"done": 0, "left": 1, "total": 1, "left_capped": False}


def test_next_by_slug_follows_the_gold_draw(project, annotator):
    from annotation.permissions import ANNOTATE
    from annotation.services.queue import comparison_next_by_slug

    project.gold_rate = 0.2
    project.save()
    regular = ComparisonFactory.create_pair(project=project)
    gold = gold_pair(project)

    _, served = comparison_next_by_slug(
        slug=project.slug, annotator=annotator, allowed=ANNOTATE, rng=FixedDraw(0.1)
    )
    assert served.comparison == gold
    judge(served, annotator)
    _, served = comparison_next_by_slug(
        slug=project.slug, annotator=annotator, allowed=ANNOTATE, rng=FixedDraw(0.9)
    )
    assert served.comparison == regular


def test_next_by_slug_leases_nothing_for_an_outsider_or_a_role_not_allowed(project, annotator):
    from annotation.services.queue import comparison_next_by_slug
    from tests.factories import UserFactory

    ComparisonFactory.create_pair(project=project)

    assert comparison_next_by_slug(
        slug=project.slug, annotator=UserFactory(), allowed=frozenset({"annotator"})
    ) == (None, None)
    assert comparison_next_by_slug(slug=project.slug, annotator=annotator, allowed=frozenset({"admin"})) == (
        "annotator",
        None,
    )
    nowhere = comparison_next_by_slug(slug="nowhere", annotator=annotator, allowed=frozenset({"annotator"}))
    assert nowhere == (None, None)
    assert not Assignment.objects.exists()


def test_next_by_slug_lets_a_superuser_in_as_admin(project):
    from annotation.services.queue import comparison_next_by_slug
    from tests.factories import UserFactory

    comparison = ComparisonFactory.create_pair(project=project)
    root = UserFactory(is_superuser=True)

    role, served = comparison_next_by_slug(slug=project.slug, annotator=root, allowed=frozenset({"admin"}))

    assert role == "admin"
    assert served.comparison == comparison

"""Which comparison an annotator sees next, and the leases that give abandoned items back.

The invariant every function here keeps, per comparison::

    open_slots == project.overlap - judgements - live leases

Leasing takes a slot, a judgement keeps it, a skip or an expired lease gives it back. The queue
only ever reads comparisons with ``open_slots > 0``, through the partial index
``comparison_queue`` (project, is_gold, -priority, id), so "next" costs the same in a project of
ten thousand items as in one of a million: it walks the index from the best item down and stops at
the first one this annotator has not touched and nobody else holds locked right now.

Concurrency: on PostgreSQL the candidate row is taken with ``FOR UPDATE SKIP LOCKED``, so
annotators asking at the same moment get different items instead of queueing behind one row lock,
and the annotator's own row is locked first so two tabs never get two leases. On SQLite the
settings open every transaction with ``BEGIN IMMEDIATE``, which serialises writers; the row locks
are no-ops there and not needed.
"""

import random
from collections import Counter
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Prefetch, Subquery, prefetch_related_objects
from django.http import Http404
from django.utils import timezone

from annotation.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    ComparisonResponse,
    Project,
)
from annotation.services.errors import Conflict

# How many stale leases one call to "next" gives back. Small, so no request pays for a backlog;
# the periodic task (annotation.tasks.leases_expire_task) drains the rest.
EXPIRE_BATCH = 50


def _slots_prefetch() -> Prefetch:
    return Prefetch("slots", queryset=ComparisonResponse.objects.select_related("response"))


def leases_expire(*, now: datetime | None = None, limit: int | None = EXPIRE_BATCH) -> int:
    """Mark leases past their expiry as expired and give their slots back. Returns how many.

    Walks the partial index ``live_lease_expiry``; rows another transaction holds (a submit in
    flight) are skipped, and that submit settles them itself. ``limit=None`` drains everything.
    """
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            batch = _expire_batch(now=now, limit=limit or 500)
        expired += batch
        if limit is not None or batch == 0:
            return expired


def _expire_batch(*, now: datetime, limit: int) -> int:
    """Expire up to ``limit`` stale leases. Must run inside a transaction (it row-locks them)."""
    stale = list(
        Assignment.objects.select_for_update(skip_locked=True)
        .filter(status=AssignmentStatus.LEASED, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", "comparison_id")[:limit]
    )
    if not stale:
        return 0
    Assignment.objects.filter(pk__in=[pk for pk, _ in stale]).update(
        status=AssignmentStatus.EXPIRED, finished_at=now
    )
    # One comparison at a time, in id order, so two sweeps can never deadlock on each other.
    for comparison_id, count in sorted(Counter(cid for _, cid in stale).items()):
        Comparison.objects.filter(pk=comparison_id).update(open_slots=F("open_slots") + count)
    return len(stale)


def comparison_next_for_annotator(
    *,
    project: Project,
    annotator: AbstractBaseUser,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Assignment | None:
    """The annotator's live lease in ``project``, else a new lease on the best open item, else None.

    The returned assignment has ``comparison.prompt`` loaded and ``comparison.slots`` prefetched
    (with their responses), so the caller can render it without further queries. Sides are
    shuffled into ``display_order`` once per lease; a re-lease after expiry keeps the old order.
    """
    now = now or timezone.now()
    rng = rng or random
    with transaction.atomic():
        # Serialise one annotator's requests (two tabs, a double click): the second one then sees
        # the lease the first one made instead of taking a second item.
        get_user_model().objects.select_for_update().filter(pk=annotator.pk).values_list("pk").first()
        _expire_batch(now=now, limit=EXPIRE_BATCH)

        live = (
            Assignment.objects.select_related("comparison__prompt")
            .filter(
                annotator=annotator,
                comparison__project=project,
                status=AssignmentStatus.LEASED,
                expires_at__gt=now,
            )
            .order_by("id")
            .first()
        )
        if live is not None:
            prefetch_related_objects([live.comparison], _slots_prefetch())
            return live

        comparison = None
        for is_gold in _queue_order(project=project, rng=rng):
            comparison = _first_open(project=project, annotator=annotator, is_gold=is_gold)
            if comparison is not None:
                break
        if comparison is None:
            return None

        prefetch_related_objects([comparison], _slots_prefetch())
        expires_at = now + timedelta(seconds=project.lease_seconds)
        if comparison.expired_lease_id is not None:
            # This annotator let a lease on this item run out before; the row is unique per
            # (comparison, annotator), so it is taken up again rather than duplicated.
            assignment = Assignment.objects.get(pk=comparison.expired_lease_id)
            assignment.status = AssignmentStatus.LEASED
            assignment.expires_at = expires_at
            assignment.finished_at = None
            assignment.save(update_fields=["status", "expires_at", "finished_at"])
        else:
            display_order = [slot.position for slot in comparison.slots.all()]
            rng.shuffle(display_order)
            assignment = Assignment.objects.create(
                comparison=comparison,
                annotator=annotator,
                display_order=display_order,
                expires_at=expires_at,
            )
        Comparison.objects.filter(pk=comparison.pk).update(open_slots=F("open_slots") - 1)
        comparison.open_slots -= 1
        assignment.comparison = comparison
        return assignment


def _queue_order(*, project: Project, rng) -> tuple[bool, ...]:
    """Which queue to try first: gold items at ``gold_rate``, regular ones otherwise.

    The other queue is the fallback, so an annotator is never told "done" while either has work.
    Projects with ``gold_rate == 0`` never serve gold items.
    """
    if project.gold_rate <= 0:
        return (False,)
    if rng.random() < project.gold_rate:
        return (True, False)
    return (False, True)


def _first_open(*, project: Project, annotator: AbstractBaseUser, is_gold: bool) -> Comparison | None:
    """Lock and return the best open comparison the annotator has not touched. Needs a transaction.

    "Touched" is any assignment that is not merely expired: judged, skipped or held. The anti-join
    probes the unique (comparison, annotator) index once per candidate, so the walk costs the
    number of items this annotator must pass over, never the size of the project.
    """
    own = Assignment.objects.filter(comparison=OuterRef("pk"), annotator=annotator)
    return (
        Comparison.objects.filter(project=project, is_gold=is_gold, open_slots__gt=0)
        .filter(~Exists(own.exclude(status=AssignmentStatus.EXPIRED)))
        .annotate(expired_lease_id=Subquery(own.values("pk")[:1]))
        .select_related("prompt")
        .order_by("-priority", "id")
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )


def assignment_for_update(*, assignment_id: int, annotator: AbstractBaseUser) -> Assignment:
    """The caller's own assignment, row-locked, with its comparison and project. Needs a transaction.

    Someone else's assignment, or one in a project the caller has left, is a 404.
    """
    assignments = Assignment.objects.select_for_update(of=("self",)).select_related("comparison__project")
    assignments = assignments.filter(pk=assignment_id, annotator=annotator)
    if not annotator.is_superuser:
        assignments = assignments.filter(comparison__project__memberships__user=annotator)
    assignment = assignments.first()
    if assignment is None:
        raise Http404("No such assignment.")
    return assignment


@transaction.atomic
def assignment_skip(
    *, assignment_id: int, annotator: AbstractBaseUser, now: datetime | None = None
) -> Assignment:
    """Pass on an item: it is never served to this annotator again, and its slot goes back.

    Skipping twice is harmless; skipping an item already judged is a 409.
    """
    now = now or timezone.now()
    assignment = assignment_for_update(assignment_id=assignment_id, annotator=annotator)
    if assignment.status == AssignmentStatus.SKIPPED:
        return assignment
    if assignment.status == AssignmentStatus.SUBMITTED:
        raise Conflict("This item is already judged; it cannot be skipped.", field="assignment")
    if assignment.status == AssignmentStatus.LEASED:
        # An expired lease already gave its slot back; only a held one has a slot to return.
        Comparison.objects.filter(pk=assignment.comparison_id).update(open_slots=F("open_slots") + 1)
    assignment.status = AssignmentStatus.SKIPPED
    assignment.finished_at = now
    assignment.save(update_fields=["status", "finished_at"])
    return assignment

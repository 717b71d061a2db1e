"""Leases: the sweep that gives abandoned items back, a skip, and the caller's assignment locked.

The invariant every write on the vote path keeps, per comparison::

    open_slots == project.overlap - judgements - live leases

Leasing takes a slot (``annotation/sql/queue_next.sql``), a judgement keeps it
(``judgement_submit.sql``), a skip or an expired lease gives it back (here).
"""

from collections import Counter
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from annotation.models import Assignment, AssignmentStatus, Comparison
from annotation.services.errors import Conflict
from annotation.services.vote_rows import assignment_with_scheme

# How many stale leases one call to "next" gives back. Small, so no request pays for a backlog;
# the periodic task (annotation.tasks.leases_expire_task) drains the rest.
EXPIRE_BATCH = 50

# NO KEY UPDATE: exclusive between the vote path's own statements, but it lets foreign-key checks
# through (inserting a judgement takes KEY SHARE on its annotator and comparison rows), so a
# submit never waits on, or deadlocks with, the same annotator's "next" in flight. SKIP LOCKED: a
# lease a submit in flight holds is left to that submit, which settles it itself.
_STALE_LEASES_SQL = """
SELECT /* queue:stale-leases */ id, comparison_id
FROM annotation_assignment
WHERE status = 'leased' AND expires_at <= %(now)s
ORDER BY expires_at
LIMIT %(limit)s
FOR NO KEY UPDATE SKIP LOCKED
"""


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
    with connection.cursor() as cursor:
        cursor.execute(_STALE_LEASES_SQL, {"now": now, "limit": limit})
        stale = cursor.fetchall()
    if not stale:
        return 0
    Assignment.objects.filter(pk__in=[pk for pk, _ in stale]).update(
        status=AssignmentStatus.EXPIRED, finished_at=now
    )
    # One comparison at a time, in id order, so two sweeps can never deadlock on each other.
    for comparison_id, count in sorted(Counter(cid for _, cid in stale).items()):
        Comparison.objects.filter(pk=comparison_id).update(open_slots=F("open_slots") + count)
    return len(stale)


_ASSIGNMENT_FOR_UPDATE_SQL = """
SELECT /* queue:assignment-for-update */ a.comparison_id, a.status, a.display_order,
       p.id, p.slug, p.allow_tie, p.allow_both_bad, p.strength_scale, p.rationale, p.overlap
FROM annotation_assignment a
JOIN annotation_comparison c ON c.id = a.comparison_id
JOIN annotation_project p ON p.id = c.project_id
WHERE a.id = %(assignment)s AND a.annotator_id = %(user)s{membership}
FOR NO KEY UPDATE OF a
"""
_MEMBERS_ONLY = """
  AND EXISTS (SELECT 1 FROM annotation_membership m WHERE m.project_id = p.id AND m.user_id = %(user)s)"""


def assignment_for_update(*, assignment_id: int, annotator: AbstractBaseUser) -> Assignment:
    """The caller's own assignment, row-locked, with its comparison and project. Needs a transaction.

    Someone else's assignment, or one in a project the caller has left, is a 404. The assignment
    carries its status and display order; its project carries the label scheme (slug, allow_tie,
    allow_both_bad, strength_scale, rationale, overlap); other fields load on first use.
    """
    sql = _ASSIGNMENT_FOR_UPDATE_SQL.format(membership="" if annotator.is_superuser else _MEMBERS_ONLY)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"assignment": assignment_id, "user": annotator.pk})
        row = cursor.fetchone()
    if row is None:
        raise Http404("No such assignment.")
    comparison_id, status, display_order, *scheme = row
    return assignment_with_scheme(
        assignment_id=assignment_id,
        annotator=annotator,
        comparison_id=comparison_id,
        status=status,
        display_order=display_order,
        scheme=scheme,
    )


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
    Assignment.objects.filter(pk=assignment.pk).update(status=AssignmentStatus.SKIPPED, finished_at=now)
    assignment.status = AssignmentStatus.SKIPPED
    assignment.finished_at = now
    return assignment

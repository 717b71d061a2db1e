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

import json
import random
from collections import Counter
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from annotation.db import prepared_cursor
from annotation.models import Assignment, AssignmentStatus, Comparison, Project, Prompt, Response
from annotation.selectors import (
    PROGRESS_LEFT_CAP,
    progress_from_counts,
    project_progress,
    project_with_role,
)
from annotation.services.errors import Conflict
from annotation.token_bearer import TokenBearer, checked_principal

# How many stale leases one call to "next" gives back. Small, so no request pays for a backlog;
# the periodic task (annotation.tasks.leases_expire_task) drains the rest.
EXPIRE_BATCH = 50

# The hot path is written in SQL by hand. "next" runs for every item an annotator sees, and the
# ORM spent more CPU compiling these statements than PostgreSQL spent running them (measured with
# bench/annotation_load.py); the SQL also pins down the plan the queue depends on. On PostgreSQL
# the same statements run inside one function, annotation_queue_next (migration 0004): one round
# trip instead of nine, with plans PostgreSQL keeps per session. Below is the portable path: plain
# SQL that SQLite runs too, the row-lock clauses added only where the database has them. The
# /* queue:... */ markers let tests find a statement and EXPLAIN it.

_LOCK_ANNOTATOR_SQL = "SELECT /* queue:lock-annotator */ 1 FROM {user_table} WHERE {pk} = %(user)s{lock}"

# A statement of its own, after the lock: on PostgreSQL a statement that waited for a row lock
# still reads the other tables as they were when it started, so it would miss the lease that a
# second tab committed meanwhile.
_LIVE_LEASE_SQL = """
SELECT /* queue:live-lease */ a.id
FROM annotation_assignment a
WHERE a.annotator_id = %(user)s AND a.status = 'leased' AND a.expires_at > %(now)s
  AND a.comparison_id IN (SELECT c.id FROM annotation_comparison c WHERE c.project_id = %(project)s)
ORDER BY a.id
LIMIT 1
"""

_STALE_LEASES_SQL = """
SELECT /* queue:stale-leases */ id, comparison_id
FROM annotation_assignment
WHERE status = 'leased' AND expires_at <= %(now)s
ORDER BY expires_at
LIMIT %(limit)s{lock}
"""

# Walks the partial index comparison_queue (project, is_gold, -priority, id WHERE open_slots > 0)
# from the best item down; the anti-join probes the unique (comparison, annotator) index once per
# item passed over, so the cost is the number of items this annotator has already touched near
# the top, never the size of the project. SKIP LOCKED: an item another annotator is taking right
# now is passed over instead of waited for.
_CANDIDATE_SQL = """
SELECT /* queue:candidate */ c.id, c.prompt_id, c.open_slots, p.messages,
       (SELECT o.id FROM annotation_assignment o
         WHERE o.comparison_id = c.id AND o.annotator_id = %(user)s) AS expired_lease_id
FROM annotation_comparison c
JOIN annotation_prompt p ON p.id = c.prompt_id
WHERE c.project_id = %(project)s AND c.is_gold = %(gold)s AND c.open_slots > 0
  AND NOT EXISTS (SELECT 1 FROM annotation_assignment t
                   WHERE t.comparison_id = c.id AND t.annotator_id = %(user)s AND t.status <> 'expired')
ORDER BY c.priority DESC, c.id
LIMIT 1{lock}
"""

_SLOTS_SQL = """
SELECT /* queue:slots */ cr.id, cr.position, r.id, r.text
FROM annotation_comparisonresponse cr
JOIN annotation_response r ON r.id = cr.response_id
WHERE cr.comparison_id = %(comparison)s
ORDER BY cr.position
"""


def _lock_clause(*, skip_locked: bool, of: str | None = None) -> str:
    features = connection.features
    if not features.has_select_for_update:
        return ""  # SQLite: BEGIN IMMEDIATE already serialises writers
    # NO KEY UPDATE: still exclusive between the queue's own statements, but it lets foreign-key
    # checks through (inserting a judgement takes KEY SHARE on its annotator and comparison rows),
    # so a submit never waits on, or deadlocks with, the same annotator's "next" in flight.
    clause = "\nFOR NO KEY UPDATE" if features.has_select_for_no_key_update else "\nFOR UPDATE"
    if of and features.has_select_for_update_of:
        clause += f" OF {of}"
    if skip_locked and features.has_select_for_update_skip_locked:
        clause += " SKIP LOCKED"
    return clause


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
        cursor.execute(
            _STALE_LEASES_SQL.format(lock=_lock_clause(skip_locked=True)),
            {"now": connection.ops.adapt_datetimefield_value(now), "limit": limit},
        )
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


def comparison_next_for_annotator(
    *,
    project: Project,
    annotator: AbstractBaseUser,
    now: datetime | None = None,
    rng: random.Random | None = None,
    with_progress: bool = False,
) -> Assignment | None:
    """The annotator's live lease in ``project``, else a new lease on the best open item, else None.

    The returned assignment has ``comparison.prompt`` loaded and ``shown_responses`` set: the
    comparison's responses in the order shown (left first), so the caller can render it without
    further queries. Sides are shuffled into ``display_order`` once per lease; a re-lease after
    expiry keeps the old order. ``with_progress`` also sets ``assignment.progress`` (as
    ``annotation.selectors.project_progress`` counts it, the lease held included).

    PostgreSQL runs it all in one call of ``annotation_queue_next`` (migration 0004, revised by
    0007 and 0008); other databases run the same steps one statement at a time.
    """
    now = now or timezone.now()
    rng = rng or random
    if connection.vendor == "postgresql":
        return _next_in_one_call(
            project=project, annotator=annotator, now=now, rng=rng, with_progress=with_progress
        )
    assignment = _next_step_by_step(project=project, annotator=annotator, now=now, rng=rng)
    if assignment is not None and with_progress:
        assignment.progress = project_progress(project=project, annotator=annotator, held=1, now=now)
    return assignment


# Sides are shuffled by ranking the comparison's positions with a permutation drawn in Python (the
# caller's rng): comparisons with more responses than this keep the rest in position order.
SHUFFLE_SLOTS = 8

_NEXT_CALL_SQL = """
SELECT /* queue:next */ * FROM annotation_queue_next(
    %(user)s, %(project)s, %(now)s, %(leased_at)s, %(expires_at)s, %(queues)s::boolean[],
    %(shuffle)s::integer[], %(expire_batch)s, %(progress_cap)s, %(serve_gold)s)
"""


def comparison_next_by_slug(
    *,
    slug: str,
    annotator: AbstractBaseUser | TokenBearer,
    allowed: frozenset[str],
    now: datetime | None = None,
    rng: random.Random | None = None,
    with_progress: bool = False,
) -> tuple[str | None, Assignment | None]:
    """``comparison_next_for_annotator`` in the project ``slug``; returns (role, assignment).

    The role is the caller's in that project (superusers act as admins), None for an outsider; an
    item is leased only when the role is in ``allowed`` (``annotation.permissions.require_role``
    turns the rest into a 404 or a 403). PostgreSQL looks the project up inside the same call,
    ``annotation_queue_next_in`` (migration 0006): "next" is then one round trip. A
    ``TokenBearer`` (PostgreSQL only) has its token checked in that call as well
    (``annotation_queue_next_by_token``, 0009): ``TokenRefused`` if it is no good.
    """
    now = now or timezone.now()
    rng = rng or random
    bearer = annotator if isinstance(annotator, TokenBearer) else None
    if bearer is None and (connection.vendor != "postgresql" or not annotator.is_authenticated):
        try:
            project, role = project_with_role(user=annotator, slug=slug)
        except Http404:
            return None, None
        if role not in allowed:
            return role, None
        assignment = comparison_next_for_annotator(
            project=project, annotator=annotator, now=now, rng=rng, with_progress=with_progress
        )
        return role, assignment
    shuffle = list(range(SHUFFLE_SLOTS))
    rng.shuffle(shuffle)
    adapt = connection.ops.adapt_datetimefield_value
    params = {
        "slug": slug,
        "roles": sorted(allowed),
        "now": adapt(now),
        "leased_at": adapt(timezone.now()),
        "gold_draw": rng.random(),
        "shuffle": shuffle,
        "expire_batch": EXPIRE_BATCH,
        "progress_cap": PROGRESS_LEFT_CAP + 1 if with_progress else None,
    }
    with prepared_cursor() as cursor:
        if bearer is None:
            params.update(user=annotator.pk, superuser=annotator.is_superuser)
            cursor.execute(_NEXT_IN_CALL_SQL, params)
            row = cursor.fetchone()
        else:
            # The token is checked in the same call (migration 0009); its user comes back first.
            cursor.execute(_NEXT_BY_TOKEN_CALL_SQL, dict(params, key=bearer.key))
            principal_id, is_superuser, *row = cursor.fetchone()
            annotator = checked_principal(principal_id, is_superuser, row[0])
    outcome, role, project_id, gold_rate, lease_seconds, overlap, *lease = row
    if outcome == "no-project":
        return None, None
    if outcome != "leased":
        return role, None  # 'forbidden', or 'empty': nothing left for them
    project = Project.from_db(  # from_db takes the values in the model's field order
        connection.alias,
        ["id", "slug", "overlap", "lease_seconds", "gold_rate"],
        [project_id, slug, overlap, lease_seconds, gold_rate],
    )
    return role, _assignment_from_row(
        lease, project=project, annotator=annotator, with_progress=with_progress
    )


_NEXT_IN_CALL_SQL = """
SELECT /* queue:next-in */ * FROM annotation_queue_next_in(
    %(user)s, %(superuser)s, %(slug)s, %(roles)s::text[], %(now)s, %(leased_at)s, %(gold_draw)s,
    %(shuffle)s::integer[], %(expire_batch)s, %(progress_cap)s)
"""


_NEXT_BY_TOKEN_CALL_SQL = """
SELECT /* queue:next-by-token */ * FROM annotation_queue_next_by_token(
    %(key)s, %(slug)s, %(roles)s::text[], %(now)s, %(leased_at)s, %(gold_draw)s,
    %(shuffle)s::integer[], %(expire_batch)s, %(progress_cap)s)
"""


def _next_in_one_call(
    *, project: Project, annotator: AbstractBaseUser, now: datetime, rng, with_progress: bool
) -> Assignment | None:
    """PostgreSQL: lock, live lease, sweep, candidate, lease and progress in one round trip."""
    shuffle = list(range(SHUFFLE_SLOTS))
    rng.shuffle(shuffle)
    adapt = connection.ops.adapt_datetimefield_value
    with prepared_cursor() as cursor:
        cursor.execute(
            _NEXT_CALL_SQL,
            {
                "user": annotator.pk,
                "project": project.pk,
                "now": adapt(now),
                "leased_at": adapt(timezone.now()),
                "expires_at": adapt(now + timedelta(seconds=project.lease_seconds)),
                "queues": list(_queue_order(project=project, rng=rng)),
                "shuffle": shuffle,
                "expire_batch": EXPIRE_BATCH,
                "progress_cap": PROGRESS_LEFT_CAP + 1 if with_progress else None,
                "serve_gold": project.gold_rate > 0,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return _assignment_from_row(row, project=project, annotator=annotator, with_progress=with_progress)


def _assignment_from_row(row, *, project: Project, annotator, with_progress: bool) -> Assignment:
    """The assignment, its comparison, prompt and shown responses from a row of annotation_queue_next."""
    (
        assignment_id,
        display_order,
        leased_at,
        expires_at,
        comparison_id,
        prompt_id,
        open_slots,
        messages,
        slots,
        done,
        open_to_them,
    ) = row
    alias = connection.alias
    display_order = json_column(display_order)
    assignment = Assignment.from_db(
        alias,
        ["id", "comparison_id", "annotator_id", "status", "display_order", "leased_at", "expires_at"],
        [
            assignment_id,
            comparison_id,
            annotator.pk,
            AssignmentStatus.LEASED,
            display_order,
            leased_at,
            expires_at,
        ],
    )
    assignment.annotator = annotator
    by_position = {
        position: Response.from_db(alias, ["id", "text"], [response_id, text])
        for position, response_id, text in json_column(slots) or []
    }
    _attach_comparison(
        assignment,
        project=project,
        prompt_id=prompt_id,
        messages=json_column(messages),
        open_slots=open_slots,
        slots=by_position,
    )
    if with_progress:
        assignment.progress = progress_from_counts(done=done, open_to_them=open_to_them, held=1)
    return assignment


def _attach_comparison(
    assignment: Assignment, *, project: Project, prompt_id: int, messages, open_slots: int, slots: dict
) -> None:
    comparison = Comparison.from_db(
        connection.alias,
        ["id", "project_id", "prompt_id", "open_slots"],
        [assignment.comparison_id, project.pk, prompt_id, open_slots],
    )
    comparison.project = project
    comparison.prompt = Prompt.from_db(
        connection.alias, ["id", "project_id", "messages"], [prompt_id, project.pk, messages]
    )
    assignment.comparison = comparison
    assignment.shown_responses = [slots[position] for position in assignment.display_order]


def _next_step_by_step(
    *, project: Project, annotator: AbstractBaseUser, now: datetime, rng
) -> Assignment | None:
    """The portable path (SQLite; also runs on PostgreSQL, where tests compare it with the function)."""
    params = {
        "now": connection.ops.adapt_datetimefield_value(now),
        "project": project.pk,
        "user": annotator.pk,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # Lock the annotator's row first: one annotator's requests (two tabs, a double click)
        # run one after the other, and the second sees the lease the first made. The live-lease
        # check is a statement of its own, after the lock: on PostgreSQL a statement that waited
        # for a row lock still reads the other tables as they were when it started.
        user_meta = get_user_model()._meta
        cursor.execute(
            _LOCK_ANNOTATOR_SQL.format(
                user_table=connection.ops.quote_name(user_meta.db_table),
                pk=connection.ops.quote_name(user_meta.pk.column),
                lock=_lock_clause(skip_locked=False),
            ),
            params,
        )
        cursor.execute(_LIVE_LEASE_SQL, params)
        row = cursor.fetchone()
        if row is not None:
            live = Assignment.objects.select_related("comparison__prompt").get(pk=row[0])
            live.shown_responses = _shown_responses(cursor, live.comparison_id, live.display_order)
            return live
        _expire_batch(now=now, limit=EXPIRE_BATCH)

        row = None
        for is_gold in _queue_order(project=project, rng=rng):
            cursor.execute(
                _CANDIDATE_SQL.format(lock=_lock_clause(skip_locked=True, of="c")),
                {**params, "gold": is_gold},
            )
            row = cursor.fetchone()
            if row is not None:
                break
        if row is None:
            return None
        comparison_id, prompt_id, open_slots, messages, expired_lease_id = row
        slots = _slots(cursor, comparison_id)
        expires_at = now + timedelta(seconds=project.lease_seconds)
        if expired_lease_id is not None:
            # This annotator let a lease on this item run out before; the row is unique per
            # (comparison, annotator), so it is taken up again rather than duplicated.
            assignment = Assignment.objects.get(pk=expired_lease_id)
            assignment.status = AssignmentStatus.LEASED
            assignment.expires_at = expires_at
            assignment.finished_at = None
            assignment.save(update_fields=["status", "expires_at", "finished_at"])
        else:
            display_order = list(slots)
            rng.shuffle(display_order)
            assignment = Assignment.objects.create(
                comparison_id=comparison_id,
                annotator=annotator,
                display_order=display_order,
                expires_at=expires_at,
            )
        cursor.execute(
            "UPDATE annotation_comparison SET open_slots = open_slots - 1 WHERE id = %(comparison)s",
            {"comparison": comparison_id},
        )

    _attach_comparison(
        assignment,
        project=project,
        prompt_id=prompt_id,
        messages=json_column(messages),
        open_slots=open_slots - 1,
        slots=slots,
    )
    return assignment


def _slots(cursor, comparison_id: int) -> dict[int, Response]:
    """The comparison's responses by canonical position (only id and text loaded)."""
    cursor.execute(_SLOTS_SQL, {"comparison": comparison_id})
    return {
        position: Response.from_db(connection.alias, ["id", "text"], [response_id, text])
        for _, position, response_id, text in cursor.fetchall()
    }


def _shown_responses(cursor, comparison_id: int, display_order: list[int]) -> list[Response]:
    slots = _slots(cursor, comparison_id)
    return [slots[position] for position in display_order]


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


_ASSIGNMENT_FOR_UPDATE_SQL = """
SELECT /* queue:assignment-for-update */ a.id, a.comparison_id, a.status, a.display_order,
       p.id, p.slug, p.allow_tie, p.allow_both_bad, p.strength_scale, p.rationale, p.overlap
FROM annotation_assignment a
JOIN annotation_comparison c ON c.id = a.comparison_id
JOIN annotation_project p ON p.id = c.project_id
WHERE a.id = %(assignment)s AND a.annotator_id = %(user)s{membership}{lock}
"""
_MEMBERS_ONLY = """
  AND EXISTS (SELECT 1 FROM annotation_membership m WHERE m.project_id = p.id AND m.user_id = %(user)s)"""


def assignment_for_update(*, assignment_id: int, annotator: AbstractBaseUser) -> Assignment:
    """The caller's own assignment, row-locked, with its comparison and project. Needs a transaction.

    Someone else's assignment, or one in a project the caller has left, is a 404. The assignment
    carries its status and display order; its project carries the label scheme (slug, allow_tie,
    allow_both_bad, strength_scale, rationale, overlap); other fields load on first use.
    """
    sql = _ASSIGNMENT_FOR_UPDATE_SQL.format(
        membership="" if annotator.is_superuser else _MEMBERS_ONLY,
        lock=_lock_clause(skip_locked=False, of="a"),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"assignment": assignment_id, "user": annotator.pk})
        row = cursor.fetchone()
    if row is None:
        raise Http404("No such assignment.")
    (
        pk,
        comparison_id,
        status,
        display_order,
        project_id,
        slug,
        allow_tie,
        allow_both_bad,
        scale,
        rationale,
        overlap,
    ) = row
    alias = connection.alias
    project = Project.from_db(
        alias,
        ["id", "slug", "allow_tie", "allow_both_bad", "strength_scale", "rationale", "overlap"],
        [project_id, slug, bool(allow_tie), bool(allow_both_bad), json_column(scale), rationale, overlap],
    )
    comparison = Comparison.from_db(alias, ["id", "project_id"], [comparison_id, project_id])
    comparison.project = project
    assignment = Assignment.from_db(
        alias,
        ["id", "comparison_id", "annotator_id", "status", "display_order"],
        [pk, comparison_id, annotator.pk, status, json_column(display_order)],
    )
    assignment.comparison = comparison
    assignment.annotator = annotator
    return assignment


def json_column(value):
    """A JSON column read with a raw cursor: Django has the driver hand it over as text."""
    return json.loads(value) if isinstance(value, str | bytes) else value


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

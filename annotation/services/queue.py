"""Which comparison an annotator sees next.

"Next" is one call of a PL/pgSQL function (``annotation/sql/queue_next.sql``, by project or by
slug, as the session's user or an API token's): the caller, the project and their role, a lock on
the annotator, their live lease, a sweep of stale leases, the candidate, the lease and the
progress counts in one round trip, with plans PostgreSQL keeps per session. The queue only ever
reads comparisons with ``open_slots > 0``, through the partial index ``comparison_queue``
(project, is_gold, -priority, id), so "next" costs the same in a project of ten thousand items as
in one of a million. The candidate is taken ``FOR NO KEY UPDATE SKIP LOCKED``: annotators asking
at the same moment get different items instead of queueing behind one row lock. The ORM is kept
off this path: it spent more CPU compiling the statements than PostgreSQL spent running them
(bench/annotation_load.py).

Leases, skips and the sweep are in ``annotation.services.leases``.
"""

import random
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone

from annotation.models import Assignment, Project
from annotation.selectors import PROGRESS_LEFT_CAP, progress_from_counts
from annotation.services.leases import (  # noqa: F401 (callers import the lease services from here too)
    EXPIRE_BATCH,
    assignment_for_update,
    assignment_skip,
    leases_expire,
)
from annotation.services.vote_rows import leased_assignment
from annotation.token_bearer import TokenBearer, call_as_caller

# Sides are shuffled by ranking the comparison's positions with a permutation drawn in Python (the
# caller's rng): comparisons with more responses than this keep the rest in position order.
SHUFFLE_SLOTS = 8

# The /* queue:... */ markers let tests find a statement and EXPLAIN it.
_NEXT_CALL_SQL = """
SELECT /* queue:next */ * FROM annotation_queue_next(
    %(key)s, %(user)s, %(superuser)s, %(project)s, %(slug)s, %(roles)s::text[], %(now)s, %(leased_at)s,
    %(gold_draw)s::double precision, %(shuffle)s::integer[], %(expire_batch)s, %(progress_cap)s)
"""
# Its row: the principal (2 columns), outcome and role, the project (4), then the lease.


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
    """
    now = now or timezone.now()
    params = _draws(rng or random, now=now, with_progress=with_progress)
    params.update(project=project.pk, slug=None, roles=None)
    row, annotator = call_as_caller(annotator, _NEXT_CALL_SQL, params)
    outcome, _role, _project_id, _gold_rate, _lease_seconds, _overlap, *lease = row
    if outcome != "leased":
        return None
    return _leased(lease, project=project, annotator=annotator, with_progress=with_progress)


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
    turns the rest into a 404 or a 403). The project is looked up inside the same call, so "next"
    is one round trip. A ``TokenBearer`` has its token checked in that call as well:
    ``TokenRefused`` if it is no good.
    """
    now = now or timezone.now()
    if not isinstance(annotator, TokenBearer) and not annotator.is_authenticated:
        return None, None  # an anonymous caller is an outsider everywhere
    params = _draws(rng or random, now=now, with_progress=with_progress)
    params.update(project=None, slug=slug, roles=sorted(allowed))
    row, annotator = call_as_caller(annotator, _NEXT_CALL_SQL, params)
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
    return role, _leased(lease, project=project, annotator=annotator, with_progress=with_progress)


def _draws(rng, *, now: datetime, with_progress: bool) -> dict:
    """The parameters every "next" call shares: times, the caller's random draws, the caps."""
    shuffle = list(range(SHUFFLE_SLOTS))
    rng.shuffle(shuffle)
    return {
        "now": now,
        "leased_at": timezone.now(),
        "gold_draw": rng.random(),
        "shuffle": shuffle,
        "expire_batch": EXPIRE_BATCH,
        "progress_cap": PROGRESS_LEFT_CAP + 1 if with_progress else None,
    }


def _leased(row, *, project: Project, annotator, with_progress: bool) -> Assignment:
    assignment, (done, open_to_them) = leased_assignment(row, project=project, annotator=annotator)
    if with_progress:
        assignment.progress = progress_from_counts(done=done, open_to_them=open_to_them, held=1)
    return assignment

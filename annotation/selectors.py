"""Reads scoped to the caller. Every lookup of a project goes through here, so another
project's objects are a 404, never a 403 that confirms they exist."""

from collections.abc import Iterable
from datetime import datetime
from functools import cache

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Count, F, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from annotation.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    ComparisonResponse,
    Judgement,
    Membership,
    Project,
    Prompt,
    Role,
)

MANAGERS = frozenset({Role.RESEARCHER, Role.ADMIN})


def projects_for_user(*, user: AbstractBaseUser, roles: Iterable[str] | None = None) -> QuerySet[Project]:
    """Projects the user belongs to (with one of ``roles``, when given). Superusers see all."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=list(roles))
    return Project.objects.filter(pk__in=memberships.values("project_id"))


def project_for_user(*, user: AbstractBaseUser, slug: str, roles: Iterable[str] | None = None) -> Project:
    """The project ``slug`` if the user may see it in one of ``roles``; otherwise Http404."""
    try:
        return projects_for_user(user=user, roles=roles).get(slug=slug)
    except Project.DoesNotExist:
        raise Http404("No such project.") from None


def role_in_project(*, user: AbstractBaseUser, project: Project) -> str | None:
    """The user's role in the project (superusers act as admins), or None for outsiders."""
    if user.is_superuser:
        return Role.ADMIN
    return Membership.objects.filter(user=user, project=project).values_list("role", flat=True).first()


# --- The annotation queue and project data (queue/API) -------------------------------------------

# "left" is counted up to this many: the exact figure for a million-item project would cost a scan
# on every request, and an annotator only needs to know there is plenty left (past the cap the
# pages add a "+": "101+ left" while they hold one). The count walks up to this many queue entries
# on every "next", so it is kept small.
PROGRESS_LEFT_CAP = 100


def project_with_role(*, user: AbstractBaseUser, slug: str) -> tuple[Project, str]:
    """The project ``slug`` and the user's role in it, in one query; Http404 for outsiders.

    Superusers act as admins of every project. Every API request starts here, so the lookup is
    one hand-written join rather than an ORM query compiled anew each time.
    """
    if not user.is_authenticated:
        raise Http404("No such project.")
    if user.is_superuser:
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise Http404("No such project.")
        return project, Role.ADMIN
    # A plain cursor and the fields' own converters (JSON columns arrive as text); the
    # raw queryset's machinery cost more Python time than the query (py-spy, annotation bench).
    sql, attnames, converters = _project_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, slug])
        row = cursor.fetchone()
    if row is None:
        raise Http404("No such project.")
    values = [
        value if convert is None else convert(value, None, connection)
        for convert, value in zip(converters, row[:-1], strict=True)
    ]
    return Project.from_db(connection.alias, attnames, values), row[-1]


_MEMBER_JOIN = (
    " FROM annotation_project p"
    " JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = %s"
    " WHERE p.slug = %s"
)


@cache
def _project_query() -> tuple[str, list[str], list]:
    """The lookup, its columns' attribute names and converters, built once per process."""
    fields = Project._meta.concrete_fields
    columns = ", ".join(f"p.{connection.ops.quote_name(field.column)}" for field in fields)
    return (
        f"SELECT {columns}, m.role{_MEMBER_JOIN}",
        [field.attname for field in fields],
        [getattr(field, "from_db_value", None) for field in fields],
    )


# The two counts are annotation_progress (annotation/sql/progress.sql), which "next" runs too.
_PROGRESS_SQL = "SELECT /* queue:progress-call */ * FROM annotation_progress(%s, %s, %s::float8, %s)"


def project_progress(
    *, project: Project, annotator: AbstractBaseUser, held: int | None = None, now: datetime | None = None
) -> dict:
    """``{"done", "left", "total", "left_capped"}`` for one annotator in one project.

    ``done`` counts their judgements, read from ``JudgementTally`` (kept by the database) in one
    index probe; ``left`` the items they could still be served, including the one they hold now,
    counted up to ``PROGRESS_LEFT_CAP`` (``left_capped`` says the count stopped there): a walk of
    at most the cap's length down the queue index, less the items they touched. Neither depends on
    the project's size. Both come from ``annotation_progress``, the function "next" runs too.
    ``held`` is how many live leases they hold here, when the caller knows (it saves a query).
    """
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_PROGRESS_SQL, [annotator.pk, project.pk, project.gold_rate, PROGRESS_LEFT_CAP + 1])
        done, left = cursor.fetchone()
    if held is None:
        held = Assignment.objects.filter(
            annotator=annotator,
            comparison__project=project,
            status=AssignmentStatus.LEASED,
            expires_at__gt=now,
        ).count()
    return progress_from_counts(done=done, open_to_them=left, held=held)


def progress_from_counts(*, done: int, open_to_them: int, held: int) -> dict:
    """The progress answer from its counts; ``open_to_them`` counted up to ``PROGRESS_LEFT_CAP + 1``.

    Shared with the queue's SQL function, which counts the same two things in its own call.
    """
    capped = open_to_them > PROGRESS_LEFT_CAP
    left = min(open_to_them, PROGRESS_LEFT_CAP) + held
    return {"done": done, "left": left, "total": done + left, "left_capped": capped}


def project_stats(*, project: Project, now: datetime | None = None) -> dict:
    """Counts a researcher watches: prompts, comparisons, judgements, completed, per annotator."""
    now = now or timezone.now()
    comparisons = Comparison.objects.filter(project=project).aggregate(
        total=Count("id"),
        completed=Count("id", filter=Q(judgement_count__gte=project.overlap)),
        gold=Count("id", filter=Q(is_gold=True)),
        with_prior=Count("id", filter=~Q(prior_choice="")),
    )
    per_annotator = list(
        Judgement.objects.filter(comparison__project=project)
        .values(username=F("annotator__username"))
        .annotate(judgements=Count("id"))
        .order_by("-judgements", "username")
    )
    return {
        "prompts": Prompt.objects.filter(project=project).count(),
        "comparisons": comparisons["total"],
        "completed": comparisons["completed"],
        "gold": comparisons["gold"],
        "with_prior": comparisons["with_prior"],
        "judgements": sum(row["judgements"] for row in per_annotator),
        "live_leases": Assignment.objects.filter(
            comparison__project=project, status=AssignmentStatus.LEASED, expires_at__gt=now
        ).count(),
        "overlap": project.overlap,
        "per_annotator": per_annotator,
    }


def comparisons_for_project(*, project: Project) -> QuerySet[Comparison]:
    """The project's comparisons for researchers, with prompt and responses loaded (no N+1)."""
    return (
        Comparison.objects.filter(project=project)
        .select_related("prompt")
        .prefetch_related(
            Prefetch(
                "slots", queryset=ComparisonResponse.objects.select_related("response").order_by("position")
            )
        )
        .order_by("id")
    )


def projects_with_roles(*, user: AbstractBaseUser) -> list[tuple[Project, str]]:
    """Every project the user may see with their role in it, by name; one query."""
    if not user.is_authenticated:
        return []
    if user.is_superuser:
        return [(project, Role.ADMIN) for project in Project.objects.order_by("name", "id")]
    memberships = Membership.objects.filter(user=user).select_related("project")
    memberships = memberships.order_by("project__name", "id")
    return [(membership.project, membership.role) for membership in memberships]

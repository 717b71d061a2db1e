"""Reads scoped to the caller. Every lookup of a project goes through here, so another
project's objects are a 404, never a 403 that confirms they exist."""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from annotation.models import Membership, Project, Role

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

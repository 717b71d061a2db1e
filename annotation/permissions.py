"""Who may do what inside a project.

Outsiders get a 404 (the project's existence is not confirmed); members whose role does not allow
an action get a 403 that names the roles that do.

- every member may annotate (take items from the queue, judge, skip);
- researchers and admins manage a project's data (comparisons, stats, imports, exports);
- admins manage members (and, later, training).
"""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404
from rest_framework.exceptions import PermissionDenied

from annotation.models import Project, Role
from annotation.selectors import project_with_role

ANNOTATE = frozenset({Role.ANNOTATOR, Role.RESEARCHER, Role.ADMIN})
MANAGE_DATA = frozenset({Role.RESEARCHER, Role.ADMIN})
MANAGE_MEMBERS = frozenset({Role.ADMIN})


def project_for_action(*, user: AbstractBaseUser, slug: str, allowed: Iterable[str]) -> tuple[Project, str]:
    """The project and the user's role in it, if that role is in ``allowed``.

    Raises Http404 for outsiders and PermissionDenied (403) for members with another role.
    """
    project, role = project_with_role(user=user, slug=slug)
    require_role(role, allowed)
    return project, role


def require_role(role: str | None, allowed: Iterable[str]) -> None:
    """Http404 when there is no role (an outsider), PermissionDenied (403) when it is not allowed."""
    if role is None:
        raise Http404("No such project.")
    allowed = frozenset(allowed)
    if role not in allowed:
        needed = " or ".join(sorted(allowed))
        raise PermissionDenied(f"Your role in this project is {role}; this needs {needed}.")

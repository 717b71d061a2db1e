"""Adding, changing and removing a project's members (admins only; the API checks the role)."""

from django.contrib.auth import get_user_model
from django.db import transaction

from annotation.models import Membership, Project, Role
from annotation.services.errors import ValidationFailed


@transaction.atomic
def membership_set(*, project: Project, username: str, role: str) -> tuple[Membership, bool]:
    """Make ``username`` a member with ``role`` (or change their role). Returns (membership, created)."""
    if role not in Role.values:
        raise ValidationFailed(f"Role must be one of {', '.join(Role.values)}; got {role!r}.", field="role")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationFailed(f"There is no user called {username!r}.", field="username")
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if membership is None:
        return Membership.objects.create(project=project, user=user, role=role), True
    if membership.role == Role.ADMIN and role != Role.ADMIN:
        _keep_an_admin(project=project, leaving=membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership, False


@transaction.atomic
def membership_remove(*, project: Project, username: str) -> None:
    """Remove ``username`` from the project. Their judgements stay; their live leases lapse."""
    membership = (
        Membership.objects.select_for_update().filter(project=project, user__username=username).first()
    )
    if membership is None:
        raise ValidationFailed(f"{username!r} is not a member of this project.", field="username")
    if membership.role == Role.ADMIN:
        _keep_an_admin(project=project, leaving=membership)
    membership.delete()


def _keep_an_admin(*, project: Project, leaving: Membership) -> None:
    # Lock every admin row so two admins demoting each other at once cannot leave the project headless.
    admins = list(
        Membership.objects.select_for_update()
        .filter(project=project, role=Role.ADMIN)
        .values_list("pk", flat=True)
    )
    if admins == [leaving.pk]:
        raise ValidationFailed(
            "A project needs at least one admin; make someone else admin first.", field="role"
        )

"""Adding, changing and removing a project's members (admins only; the API checks the role).

An admin must not learn from us which usernames exist. Someone already in the project is named by
username alone (the admin sees the member list anyway); someone new needs their account's username
*and* email address, and a pair that matches no account answers the same whether the username
exists or not. So the admin learns only what they already knew: that this person, whose address
they have, has an account here.
"""

from django.contrib.auth import get_user_model
from django.db import transaction

from annotation.models import Membership, Project, Role
from annotation.services.errors import ValidationFailed

# One answer for every new member we cannot add, whatever the reason: no such username, a different
# address, no address on the account, or none given.
NO_SUCH_ACCOUNT = "No account has this username with this email address."


@transaction.atomic
def membership_set(*, project: Project, username: str, role: str, email: str = "") -> tuple[Membership, bool]:
    """Make ``username`` a member with ``role`` (or change their role). Returns (membership, created).

    A new member's ``email`` must be their account's (compared ignoring case); otherwise the
    refusal is ``NO_SUCH_ACCOUNT`` on ``email``, the same for a username that exists and one
    that does not.
    """
    if role not in Role.values:
        raise ValidationFailed(f"Role must be one of {', '.join(Role.values)}; got {role!r}.", field="role")
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .filter(project=project, user__username=username)
        .first()
    )
    if membership is None:
        user = (
            get_user_model().objects.filter(username=username, email__iexact=email).first() if email else None
        )
        if user is None:
            raise ValidationFailed(NO_SUCH_ACCOUNT, field="email")
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

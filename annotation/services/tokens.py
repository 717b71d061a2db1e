"""Issuing and rotating API tokens (``annotation.models.ApiToken``).

A token is issued for a username and password (``POST /api/auth/token/``), checked by django-axes
like every login, and its key is answered once: only its digest is stored. Rotating replaces the
token the caller presented with a new one, so a key that may have leaked stops working at once.
Tokens expire ``ALIGNWEB_TOKEN_TTL_DAYS`` after they are issued; a new one starts afresh.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from annotation.models import ApiToken
from annotation.services.errors import Conflict, ValidationFailed
from annotation.token_keys import key_digest, key_prefix, new_key


@dataclass(frozen=True)
class IssuedToken:
    key: str
    prefix: str
    expires_at: datetime


def api_token_build(*, user, now: datetime | None = None) -> tuple[ApiToken, str]:
    """An unsaved token for ``user`` and its key (callers that create many use ``bulk_create``)."""
    now = now or timezone.now()
    key = new_key()
    token = ApiToken(
        digest=key_digest(key),
        prefix=key_prefix(key),
        user=user,
        created_at=now,
        expires_at=now + timedelta(days=settings.ALIGNWEB_TOKEN_TTL_DAYS),
    )
    return token, key


def api_token_issue(*, user) -> IssuedToken:
    """A new token for ``user``; their expired ones are deleted on the way."""
    now = timezone.now()
    ApiToken.objects.filter(user=user, expires_at__lte=now).delete()
    token, key = api_token_build(user=user, now=now)
    token.save()
    return IssuedToken(key=key, prefix=token.prefix, expires_at=token.expires_at)


def api_token_for_login(*, request: HttpRequest, username: str, password: str) -> IssuedToken:
    """A new token for whoever the username and password name, checked as a login.

    The check is ``django.contrib.auth.authenticate`` with the request, so django-axes counts a
    failure and refuses a locked-out username or address (its middleware answers 429).
    """
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise ValidationFailed("Unable to log in with the username and password given.")
    return api_token_issue(user=user)


@transaction.atomic
def api_token_rotate(*, user, digest: str) -> IssuedToken:
    """Replace ``user``'s token with this digest by a new one; ``Conflict`` if it went meanwhile
    (a concurrent rotation or a revocation came first: only one rotation gets a new token)."""
    deleted, _ = ApiToken.objects.filter(user=user, digest=digest).delete()
    if not deleted:
        raise Conflict("This token was replaced or revoked meanwhile.")
    return api_token_issue(user=user)

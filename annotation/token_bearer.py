"""A caller known so far only by the API token they sent, checked by the database call that needs them.

Every vote is two API calls, and each one looked the token up in its own round trip before doing
its work in another. The vote's two functions take the token's key instead
(``annotation/sql/queue_next.sql``, ``judgement_submit.sql``, both through ``principal.sql``):
the check happens inside the call that was going to run anyway, with the same rules as here
(an unknown key, an expired token or an inactive user is refused and nothing else happens). Keys
are looked up by their digest (``annotation.token_keys``). Until then the caller is
a ``TokenBearer``: authenticated as far as DRF's permission check goes, but with no user attributes,
so any code that reaches for one before the check fails loudly instead of acting for nobody.
A throttle that keys on the user has the token checked first (``VoteLoopApi.check_throttles``).
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.db import prepared_cursor
from annotation.models import ApiToken
from annotation.token_keys import key_digest


class TokenRefused(Exception):
    """The token is unknown or expired, or its user inactive; the API answers 401 with this message."""


# The refusal codes principal.sql answers, worded as DRF's TokenAuthentication words the first two.
REFUSALS = {
    "bad-token": _("Invalid token."),
    "expired": _("Token has expired."),
    "inactive": _("User inactive or deleted."),
}


def user_for_token(key: str):
    """The token's user, looked up on its own with principal.sql's rules; ``TokenRefused`` if no good.

    Every API call not in the vote loop authenticates this way, and the ORM spent longer compiling
    DRF's token query than PostgreSQL spent answering it (bench/annotation_load.py). The row is read
    with a plain cursor and turned into a user directly: the raw queryset's machinery (column
    mapping, converters) was still a fifth of an API request's Python time under py-spy. The
    statement is prepared once per connection (``annotation.db.prepared_cursor``).
    """
    user, expires_at = _user_by_token(key)
    if user is None:
        raise TokenRefused(REFUSALS["bad-token"])
    if expires_at <= timezone.now():
        raise TokenRefused(REFUSALS["expired"])
    if not user.is_active:
        raise TokenRefused(REFUSALS["inactive"])
    return user


@cache
def _user_query() -> tuple[str, list[str]]:
    """The lookup and the attribute names of its columns, built once per process."""
    User = get_user_model()
    fields = User._meta.concrete_fields
    columns = ", ".join(f"u.{connection.ops.quote_name(field.column)}" for field in fields)
    return f"SELECT {columns}, t.expires_at{_join()}", [field.attname for field in fields]


def _join() -> str:
    User = get_user_model()
    return (
        f" FROM {User._meta.db_table} u JOIN {ApiToken._meta.db_table} t"
        f" ON t.user_id = u.{User._meta.pk.column} WHERE t.digest = %s"
    )


def _user_by_token(key: str) -> tuple:
    """(user, the token's expiry), or (None, None) for an unknown key."""
    sql, attnames = _user_query()
    with prepared_cursor() as cursor:
        cursor.execute(sql, [key_digest(key)])
        row = cursor.fetchone()
    if row is None:
        return None, None
    *columns, expires_at = row
    return get_user_model().from_db(connection.alias, attnames, columns), expires_at


class TokenBearer:
    is_authenticated = True
    is_anonymous = False

    def __init__(self, key: str):
        self.key = key

    def __repr__(self) -> str:
        return "<TokenBearer>"  # never the key: reprs end up in logs

    def user(self):
        """The token's user looked up on its own (paths that cannot pass the key down); or refused."""
        return user_for_token(self.key)


def caller_params(caller) -> dict:
    """The vote functions' first three arguments (key, user, superuser) for a user or a bearer."""
    if isinstance(caller, TokenBearer):
        return {"key": caller.key, "user": None, "superuser": None}
    return {"key": None, "user": caller.pk, "superuser": caller.is_superuser}


def acting_user(caller, principal_id, is_superuser, outcome: str):
    """Who a vote function acted for, from the columns it returns first: the caller, or a bearer's user."""
    if isinstance(caller, TokenBearer):
        return checked_principal(principal_id, is_superuser, outcome)
    return caller


def checked_principal(principal_id, is_superuser, outcome: str):
    """The user a by-token call acted for, from the columns it returns first; or ``TokenRefused``.

    Only the id and the superuser flag come back: the user's other fields are deferred, so reading
    one costs a query rather than giving a wrong value.
    """
    if outcome in REFUSALS:
        raise TokenRefused(REFUSALS[outcome])
    return get_user_model().from_db(
        connection.alias, ["id", "is_superuser", "is_active"], [principal_id, is_superuser, True]
    )


def call_as_caller(caller, sql: str, params: dict) -> tuple:
    """One round trip of a vote function for a user or a bearer, and the user it acted for:
    ``(row, user)``. The function takes the caller first (``caller_params``) and returns the
    principal's id and superuser flag before its own columns (``acting_user``)."""
    with prepared_cursor() as cursor:
        cursor.execute(sql, dict(params, **caller_params(caller)))
        principal_id, is_superuser, *row = cursor.fetchone()
    return tuple(row), acting_user(caller, principal_id, is_superuser, row[0])

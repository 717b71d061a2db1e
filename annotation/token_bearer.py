"""A caller known so far only by the API token they sent, checked by the database call that needs them.

Every vote is two API calls, and each one looked the token up in its own round trip before doing
its work in another. The vote's two functions take the token's key instead
(``annotation/sql/queue_next.sql``, ``judgement_submit.sql``, both through ``principal.sql``):
the check happens inside the call that was going to run anyway, with DRF's rules
(an unknown key or an inactive user is refused and nothing else happens). Until then the caller is
a ``TokenBearer``: authenticated as far as DRF's permission check goes, but with no user attributes,
so any code that reaches for one before the check fails loudly instead of acting for nobody.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework.authtoken.models import Token

from annotation.db import prepared_cursor


class TokenRefused(Exception):
    """The token is unknown, or its user inactive; the API answers 401 with this message."""


# DRF's TokenAuthentication messages, for the same two refusals.
_REFUSALS = {"bad-token": _("Invalid token."), "inactive": _("User inactive or deleted.")}


def user_for_token(key: str):
    """The token's user, looked up on its own with DRF's rules; ``TokenRefused`` if no good.

    Every API call not in the vote loop authenticates this way, and the ORM spent longer compiling
    DRF's token query than PostgreSQL spent answering it (bench/annotation_load.py). The row is read
    with a plain cursor and turned into a user directly: the raw queryset's machinery (column
    mapping, converters) was still a fifth of an API request's Python time under py-spy. The
    statement is prepared once per connection (``annotation.db.prepared_cursor``).
    """
    user = _user_by_token(key)
    if user is None:
        raise TokenRefused(_REFUSALS["bad-token"])
    if not user.is_active:
        raise TokenRefused(_REFUSALS["inactive"])
    return user


@cache
def _user_query() -> tuple[str, list[str]]:
    """The lookup and the attribute names of its columns, built once per process."""
    User = get_user_model()
    fields = User._meta.concrete_fields
    columns = ", ".join(f"u.{connection.ops.quote_name(field.column)}" for field in fields)
    return f"SELECT {columns}{_join()}", [field.attname for field in fields]


def _join() -> str:
    User = get_user_model()
    return (
        f" FROM {User._meta.db_table} u JOIN {Token._meta.db_table} t"
        f" ON t.user_id = u.{User._meta.pk.column} WHERE t.key = %s"
    )


def _user_by_token(key: str):
    sql, attnames = _user_query()
    with prepared_cursor() as cursor:
        cursor.execute(sql, [key])
        row = cursor.fetchone()
    if row is None:
        return None
    return get_user_model().from_db(connection.alias, attnames, row)


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
    if outcome in _REFUSALS:
        raise TokenRefused(_REFUSALS[outcome])
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

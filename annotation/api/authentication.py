"""API token authentication: DRF's, with the lookup written as one join.

Every API call authenticates, and the ORM spent longer compiling DRF's token query than
PostgreSQL spent answering it (bench/annotation_load.py). Same tokens, same errors. On PostgreSQL
the row is read with a plain cursor and turned into a user directly: the raw queryset's machinery
(column mapping, converters) was still a fifth of an API request's Python time under py-spy. The
statement is prepared once per connection (``annotation.db.prepared_cursor``).
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.drainage import set_override
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from annotation.db import prepared_cursor
from annotation.token_bearer import TokenBearer


@cache
def _user_query() -> tuple[str, list[str]]:
    """The PostgreSQL lookup and the attribute names of its columns, built once per process."""
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
    User = get_user_model()
    if connection.vendor != "postgresql":
        # Other databases may hand some columns over in a raw form (SQLite: dates as text);
        # the raw queryset applies the field converters.
        users = list(User.objects.raw("SELECT u.*" + _join(), [key]))
        return users[0] if users else None
    sql, attnames = _user_query()
    with prepared_cursor() as cursor:
        cursor.execute(sql, [key])
        row = cursor.fetchone()
    if row is None:
        return None
    return User.from_db(connection.alias, attnames, row)


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str):
        user = _user_by_token(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)


class VoteLoopTokenAuthentication(TokenAuthentication):
    """The token header read as DRF reads it, and checked by the vote's own call (PostgreSQL).

    For "next" and the judgement only: on PostgreSQL the caller is a ``TokenBearer``, with no query
    yet, and the service's one database call checks the token with the same rules
    (``annotation.token_bearer``); the view turns its ``TokenRefused`` into the same 401 as here.
    A vote is then two round trips instead of four. Other databases look the token up first.
    """

    def authenticate_credentials(self, key: str):
        if connection.vendor != "postgresql":
            return super().authenticate_credentials(key)
        return TokenBearer(key), None


# The same header and the same tokens as TokenAuthentication: one "tokenAuth" scheme in the schema.
set_override(VoteLoopTokenAuthentication, "suppress_collision_warning", True)

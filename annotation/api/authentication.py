"""API token authentication: DRF's, with the lookup written as one join.

Every API call authenticates, and the ORM spent longer compiling DRF's token query than
PostgreSQL spent answering it (bench/annotation_load.py). Same tokens, same errors. On PostgreSQL
the row is read with a plain cursor and turned into a user directly: the raw queryset's machinery
(column mapping, converters) was still a fifth of an API request's Python time under py-spy.
"""

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token


def _user_by_token(key: str):
    User = get_user_model()
    join = (
        f" FROM {User._meta.db_table} u JOIN {Token._meta.db_table} t"
        f" ON t.user_id = u.{User._meta.pk.column} WHERE t.key = %s"
    )
    if connection.vendor != "postgresql":
        # Other databases may hand some columns over in a raw form (SQLite: dates as text);
        # the raw queryset applies the field converters.
        users = list(User.objects.raw("SELECT u.*" + join, [key]))
        return users[0] if users else None
    fields = User._meta.concrete_fields
    columns = ", ".join(f"u.{connection.ops.quote_name(field.column)}" for field in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}{join}", [key])
        row = cursor.fetchone()
    if row is None:
        return None
    return User.from_db(connection.alias, [field.attname for field in fields], row)


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str):
        user = _user_by_token(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)

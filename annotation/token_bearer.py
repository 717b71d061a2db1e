"""A caller known so far only by the API token they sent, checked by the database call that needs them.

Every vote is two API calls, and each one looked the token up in its own round trip before doing
its work in another. On PostgreSQL the vote's two functions take the token's key instead
(migration 0009): the check happens inside the call that was going to run anyway, with DRF's rules
(an unknown key or an inactive user is refused and nothing else happens). Until then the caller is
a ``TokenBearer``: authenticated as far as DRF's permission check goes, but with no user attributes,
so any code that reaches for one before the check fails loudly instead of acting for nobody.
"""

from django.contrib.auth import get_user_model
from django.db import connection


class TokenRefused(Exception):
    """The token is unknown, or its user inactive; the API answers 401 with this message."""


_REFUSALS = {"bad-token": "Invalid token.", "inactive": "User inactive or deleted."}


class TokenBearer:
    is_authenticated = True
    is_anonymous = False

    def __init__(self, key: str):
        self.key = key

    def __repr__(self) -> str:
        return "<TokenBearer>"  # never the key: reprs end up in logs

    def user(self):
        """The token's user looked up on its own (paths that cannot pass the key down); or refused."""
        from rest_framework.authtoken.models import Token

        token = Token.objects.select_related("user").filter(key=self.key).first()
        if token is None:
            raise TokenRefused(_REFUSALS["bad-token"])
        if not token.user.is_active:
            raise TokenRefused(_REFUSALS["inactive"])
        return token.user


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

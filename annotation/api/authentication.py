"""API token authentication: ``Authorization: Token <key>``, the key looked up by its digest.

The lookup and its rules (``annotation.token_bearer.user_for_token``: unknown, expired, inactive)
are shared with the vote loop's ``TokenBearer``, which checks them inside its own database call
where it can.
"""

from drf_spectacular.drainage import set_override
from rest_framework import authentication, exceptions

from annotation.models import ApiToken
from annotation.token_bearer import TokenBearer, TokenRefused, user_for_token
from annotation.token_keys import key_digest


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's header and errors; ``request.auth`` is the presented token, unsaved, by its digest."""

    def authenticate_credentials(self, key: str):
        try:
            user = user_for_token(key)
        except TokenRefused as refused:
            raise exceptions.AuthenticationFailed(refused.args[0]) from None
        return user, ApiToken(digest=key_digest(key), user=user)


class VoteLoopTokenAuthentication(TokenAuthentication):
    """The token header read as DRF reads it, and checked by the vote's own call.

    For "next" and the judgement only: the caller is a ``TokenBearer``, with no query yet, and the
    service's one database call checks the token with the same rules (``annotation.token_bearer``);
    the view turns its ``TokenRefused`` into the same 401 as here. A vote is then two round trips
    instead of four. A per-user throttle needs the user first, and has the token checked on its
    own (``annotation.api.queue.VoteLoopApi.check_throttles``).
    """

    def authenticate_credentials(self, key: str):
        return TokenBearer(key), None


# The same header and the same tokens as TokenAuthentication: one "tokenAuth" scheme in the schema.
set_override(VoteLoopTokenAuthentication, "suppress_collision_warning", True)

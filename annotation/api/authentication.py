"""API token authentication: DRF's, with the lookup written as one join.

Every API call authenticates, and the ORM spent longer compiling DRF's token query than
PostgreSQL spent answering it (bench/annotation_load.py). Same tokens, same errors.
"""

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str):
        User = get_user_model()
        users = list(
            User.objects.raw(
                f"SELECT u.* FROM {User._meta.db_table} u"
                f" JOIN {Token._meta.db_table} t ON t.user_id = u.{User._meta.pk.column}"
                " WHERE t.key = %s",
                [key],
            )
        )
        if not users:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = users[0]
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)

"""The API's request rates (``REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]``), counted in the cache.

Anonymous callers are counted per address (``ALIGNWEB_THROTTLE_ANON``; they reach only the token
endpoint, the rest refuse them first), signed-in ones per user (``ALIGNWEB_THROTTLE_USER``),
whatever token or session they come with; over the rate is a 429 with ``Retry-After``. A rate of
None ("off") lets everything through. The rate is read from the settings on each request, not
frozen into the class at import as DRF's own throttles do, so a test's ``override_settings``
reaches it.
"""

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class AnonThrottle(AnonRateThrottle):
    def get_rate(self) -> str | None:
        return settings.ALIGNWEB_THROTTLE_ANON


class UserThrottle(UserRateThrottle):
    """Per user: ``request.user`` must be a checked user, not a ``TokenBearer`` (no ``pk``)."""

    def get_rate(self) -> str | None:
        return settings.ALIGNWEB_THROTTLE_USER


def any_active(throttles) -> bool:
    """Whether any of these throttle instances counts requests (a rate that is not "off")."""
    return any(throttle.rate is not None for throttle in throttles)

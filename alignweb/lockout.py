"""What a locked-out login attempt is answered, and whose address a lockout counts.

django-axes counts failed logins (the login form, the admin's, ``POST /api/auth/token/``) per
username and per address, and its middleware hands a locked-out request to ``lockout_response``
(``AXES_LOCKOUT_CALLABLE``): a 429 with ``Retry-After``, as JSON for the API and as a page for a
browser. The address is the one DRF's throttles count by (``client_address``), so a proxy setting
(``ALIGNWEB_PROXY_COUNT``) means the same to both.
"""

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.throttling import BaseThrottle

MESSAGE = "Too many failed login attempts. Try again later."


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    retry_after = int(get_cool_off(request).total_seconds())
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": MESSAGE}, status=429)
    else:
        context = {"message": MESSAGE, "retry_minutes": max(1, retry_after // 60)}
        response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def client_address(request: HttpRequest) -> str:
    """The caller's address as DRF's throttles see it: the connection's, or the one the trusted
    proxies (``REST_FRAMEWORK["NUM_PROXIES"]``) put in X-Forwarded-For."""
    return BaseThrottle().get_ident(request)

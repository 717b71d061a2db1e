"""Form views refuse in one place, as the API's exception handler does for the API: a
``ServiceError`` raised by the view becomes an error message ("field: message") and a redirect."""

import functools
from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from annotation.services.errors import ServiceError


def refusal_text(error: ServiceError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message


def refused_to(url_name: str, *url_kwargs: str) -> Callable:
    """On a ``ServiceError``, show it and redirect to ``url_name`` with the view's own URL
    arguments named in ``url_kwargs`` (e.g. ``refused_to("training-run", "slug", "run_id")``)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def refusing(request: HttpRequest, **kwargs) -> HttpResponse:
            try:
                return view(request, **kwargs)
            except ServiceError as error:
                messages.error(request, refusal_text(error))
                return redirect(url_name, **{name: kwargs[name] for name in url_kwargs})

        return refusing

    return decorate

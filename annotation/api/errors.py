"""The API's one exception handler (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``), and request input.

Views validate their input with ``validated`` (one serializer per endpoint), call a service, and
let errors rise: a ``ServiceError`` becomes its own status code with ``error.as_dict()``
(``{"errors": {field: [message]}}``, plus what a subclass adds, such as an import's problems),
and a refused request the same ``{"errors": ...}`` shape with a 400. Everything else is DRF's
(401, 403, 404, 405, a body that does not parse).
"""

from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotation.services.errors import ServiceError


class InvalidRequest(Exception):
    """A request serializer refused the input; ``errors`` is its ``{field: [message]}``."""

    def __init__(self, errors: dict) -> None:
        super().__init__(errors)
        self.errors = errors


def validated(serializer_class: type[serializers.Serializer], data, **context) -> dict:
    """``data`` through ``serializer_class`` (``context`` for its fields), or ``InvalidRequest``."""
    serializer = serializer_class(data=data, context=context)
    if not serializer.is_valid():
        raise InvalidRequest(serializer.errors)
    return serializer.validated_data


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, InvalidRequest):
        return Response({"errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


class RequestSerializer(serializers.Serializer):
    """A JSON object body: anything else is refused as today's views did, by name."""

    default_error_messages = {"invalid": "Send a JSON object."}

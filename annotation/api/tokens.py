"""API tokens: one for a username and password, and a new one in place of the caller's."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.authentication import TokenAuthentication
from annotation.api.errors import RequestSerializer, validated
from annotation.api.serializers import ErrorsSerializer
from annotation.services.tokens import IssuedToken, api_token_for_login, api_token_rotate


class TokenRequestSerializer(RequestSerializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class IssuedTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The key, for `Authorization: Token <key>`; shown only now.")
    prefix = serializers.CharField(help_text="The key's first characters, to tell tokens apart.")
    expires_at = serializers.DateTimeField()


def issued_payload(issued: IssuedToken) -> dict:
    return IssuedTokenSerializer(
        {"token": issued.key, "prefix": issued.prefix, "expires_at": issued.expires_at}
    ).data


_LOCKED_OUT = OpenApiResponse(
    inline_serializer("LockedOut", {"detail": serializers.CharField()}),
    description="Too many failed logins for this username or from this address; see Retry-After.",
)


class TokenApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=TokenRequestSerializer,
        responses={201: IssuedTokenSerializer, 400: ErrorsSerializer, 429: _LOCKED_OUT},
        auth=[],
        summary="A new API token for a username and password",
    )
    def post(self, request: Request) -> Response:
        data = validated(TokenRequestSerializer, request.data)
        # The Django request, not DRF's: django-axes marks it, and its middleware reads the mark.
        issued = api_token_for_login(request=request._request, **data)
        return Response(issued_payload(issued), status=status.HTTP_201_CREATED)


class TokenRotateApi(APIView):
    """The token the request came with is replaced: a session has no token to rotate."""

    authentication_classes = [TokenAuthentication]

    @extend_schema(
        request=None,
        responses={201: IssuedTokenSerializer, 409: ErrorsSerializer},
        summary="Replace the token this request comes with by a new one; the old one stops working",
    )
    def post(self, request: Request) -> Response:
        issued = api_token_rotate(user=request.user, digest=request.auth.digest)
        return Response(issued_payload(issued), status=status.HTTP_201_CREATED)

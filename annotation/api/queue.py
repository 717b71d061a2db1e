"""The annotator's loop: next item, judge it (or skip it)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed, ParseError, UnsupportedMediaType
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.authentication import VoteLoopTokenAuthentication
from annotation.api.errors import InvalidRequest
from annotation.api.serializers import (
    ErrorsSerializer,
    JudgementInputSerializer,
    JudgementSerializer,
    NextSerializer,
    SkipSerializer,
    assignment_payload,
    judgement_input_as_sent,
    judgement_payload,
)
from annotation.api.throttles import any_active
from annotation.permissions import ANNOTATE, require_role
from annotation.services.judgements import judgement_submit
from annotation.services.queue import assignment_skip, comparison_next_by_slug
from annotation.token_bearer import TokenBearer, TokenRefused


class _OnlyRenderer(DefaultContentNegotiation):
    """The view's one renderer, whatever the Accept header says (DRF's "ignore the client" pattern).

    DRF parses the Accept header and matches it against the renderers on every request; with one
    renderer that was ~4% of the app's CPU under the load bench, for an answer known in advance.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class VoteLoopApi(APIView):
    """The two calls of every vote ("next", then the judgement) do less per request than DRF's defaults.

    One renderer and no negotiation; JSON bodies only (the page and the API clients send JSON);
    the token tried before the session, so an API client's request never loads a session first,
    and on PostgreSQL checked inside the call that does the work (``VoteLoopTokenAuthentication``).
    An unauthenticated request is then a 401 with ``WWW-Authenticate: Token`` instead of a 403.

    Until the service's call has checked it, ``request.user`` may be a ``TokenBearer``, which has
    no user attributes: a throttle or permission that reads them (``UserRateThrottle`` reads
    ``pk``) needs the token checked first. While a throttle counts requests (``check_throttles``)
    the token is checked before it, and the service's call then acts for the user found; with
    throttles off, the call checks it. Answers that go out before the call (a body that does not
    parse or validate) check the token on its own, so a bad token is a 401 whatever the body.
    """

    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    content_negotiation_class = _OnlyRenderer
    authentication_classes = [VoteLoopTokenAuthentication, SessionAuthentication]

    def check_throttles(self, request: Request) -> None:
        # The per-user throttle keys on the user, so a bearer's token is checked first (one query);
        # a refused token is then a 401 before anything is counted or done.
        if isinstance(request.user, TokenBearer) and any_active(self.get_throttles()):
            request.user = request.user.user()
        super().check_throttles(request)

    def handle_exception(self, exc):
        if isinstance(exc, TokenRefused):  # the service's own call checked the token
            exc = AuthenticationFailed(str(exc))
        elif isinstance(exc, (ParseError, UnsupportedMediaType)):
            try:
                refuse_a_bad_token(self.request)
            except AuthenticationFailed as refused:
                exc = refused
        return super().handle_exception(exc)


def refuse_a_bad_token(request: Request) -> None:
    """Check a ``TokenBearer``'s token on its own (one query): ``AuthenticationFailed`` if no good."""
    if isinstance(request.user, TokenBearer):
        try:
            request.user.user()
        except TokenRefused as refused:
            raise AuthenticationFailed(str(refused)) from None


class NextApi(VoteLoopApi):
    @extend_schema(
        request=None,
        responses={
            200: NextSerializer,
            204: OpenApiResponse(description="Nothing left for you in this project right now."),
        },
        summary="Lease the next comparison (or get back the one you hold)",
    )
    def post(self, request: Request, slug: str) -> Response:
        role, assignment = comparison_next_by_slug(
            slug=slug, annotator=request.user, allowed=ANNOTATE, with_progress=True
        )
        require_role(role, ANNOTATE)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response({"assignment": assignment_payload(assignment), "progress": assignment.progress})


class JudgementApi(VoteLoopApi):
    @extend_schema(
        request=JudgementInputSerializer,
        responses={
            201: JudgementSerializer,
            200: OpenApiResponse(JudgementSerializer, description="A replay: the judgement already stored."),
            400: ErrorsSerializer,
            404: OpenApiResponse(description="Not your assignment."),
            409: ErrorsSerializer,
        },
        summary="Judge the comparison you hold",
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        data = judgement_input_as_sent(request.data)
        if data is None:
            form = JudgementInputSerializer(data=request.data)
            if not form.is_valid():
                refuse_a_bad_token(request)
                raise InvalidRequest(form.errors)
            data = form.validated_data
        judgement, created = judgement_submit(
            assignment_id=assignment_id,
            annotator=request.user,
            choice_shown=data["choice"],
            strength=data["strength"],
            rationale=data["rationale"],
            duration_ms=data["duration_ms"],
        )
        return Response(
            judgement_payload(judgement), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class SkipApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: SkipSerializer,
            404: OpenApiResponse(description="Not your assignment."),
            409: ErrorsSerializer,
        },
        summary="Pass on the comparison you hold; it is not shown to you again",
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_skip(assignment_id=assignment_id, annotator=request.user)
        return Response({"id": assignment.pk, "status": assignment.status})

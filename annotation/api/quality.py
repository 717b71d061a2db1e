"""Annotation quality over the API (researchers and admins): the report, and gold marking."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Comparison
from annotation.permissions import MANAGE_DATA, project_for_action
from annotation.quality.report import FAST_MS_DEFAULT, project_quality_report
from annotation.services.errors import ServiceError
from annotation.services.gold import comparison_gold_set


class QualityApi(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        parameters=[OpenApiParameter("fast_ms", int, description="Judgements faster than this are 'fast'.")],
        summary="Agreement, gold accuracy, position and length bias, per annotator and overall",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        raw = request.query_params.get("fast_ms", str(FAST_MS_DEFAULT))
        if not raw.isdigit():
            return Response({"errors": {"fast_ms": ["fast_ms must be a whole number of milliseconds."]}}, 400)
        return Response(project_quality_report(project=project, fast_ms=int(raw)))


class GoldApi(APIView):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=OpenApiTypes.OBJECT,
        summary="Mark a comparison as gold with its known answer, or unmark it",
        description='Body `{"gold_choice": "a" | "b" | "tie" | "both_bad" | null}`; null unmarks.',
    )
    def put(self, request: Request, slug: str, comparison_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        comparison = get_object_or_404(Comparison, project=project, pk=comparison_id)
        if not isinstance(request.data, dict) or "gold_choice" not in request.data:
            return Response({"errors": {"gold_choice": ["Send gold_choice (null to unmark)."]}}, 400)
        try:
            comparison = comparison_gold_set(comparison=comparison, gold_choice=request.data["gold_choice"])
        except ServiceError as error:
            return Response(error.as_dict(), status=error.status_code)
        return Response(
            {"id": comparison.pk, "is_gold": comparison.is_gold, "gold_choice": comparison.gold_choice}
        )

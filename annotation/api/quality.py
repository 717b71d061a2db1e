"""Annotation quality over the API (researchers and admins): the report, and gold marking."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.errors import RequestSerializer, validated
from annotation.api.serializers import ErrorsSerializer
from annotation.models import Choice, Comparison
from annotation.permissions import MANAGE_DATA, project_for_action
from annotation.quality.report import FAST_MS_DEFAULT, project_quality_report
from annotation.services.gold import comparison_gold_set

WHOLE_MS = "fast_ms must be a whole number of milliseconds."


class QualityQuerySerializer(serializers.Serializer):
    fast_ms = serializers.IntegerField(
        required=False,
        default=FAST_MS_DEFAULT,
        min_value=0,
        error_messages={"invalid": WHOLE_MS, "min_value": WHOLE_MS},
        help_text="Judgements faster than this are 'fast'.",
    )


class QualityReportSerializer(serializers.Serializer):
    project = serializers.DictField(
        help_text="Counts, agreement (krippendorff_alpha, mean_pairwise_kappa, majority_agreement), "
        "gold (seen, correct, accuracy, threshold, flagged) and bias (left, longer, fast, tie rates)."
    )
    annotators = serializers.ListField(
        child=serializers.DictField(), help_text="Per annotator: counts, kappa, gold accuracy, bias, flagged."
    )
    pairwise_kappa = serializers.ListField(child=serializers.DictField(), help_text="Per pair of annotators.")
    progress = serializers.ListField(
        child=serializers.DictField(), help_text="Judgements by day, cumulative."
    )


class GoldRequestSerializer(RequestSerializer):
    gold_choice = serializers.ChoiceField(
        choices=Choice.choices,
        allow_null=True,
        allow_blank=True,
        error_messages={
            "required": "Send gold_choice (null to unmark).",
            "invalid_choice": f"gold_choice must be one of {', '.join(Choice.values)}; got '{{input}}'.",
        },
        help_text="The known answer in canonical positions; null (or an empty string) unmarks.",
    )


class GoldSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    is_gold = serializers.BooleanField()
    gold_choice = serializers.ChoiceField(choices=Choice.choices, allow_blank=True, allow_null=True)


class QualityApi(APIView):
    @extend_schema(
        responses={200: QualityReportSerializer, 400: ErrorsSerializer},
        parameters=[QualityQuerySerializer],
        summary="Agreement, gold accuracy, position and length bias, per annotator and overall",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        fast_ms = validated(QualityQuerySerializer, request.query_params)["fast_ms"]
        return Response(project_quality_report(project=project, fast_ms=fast_ms))


class GoldApi(APIView):
    @extend_schema(
        request=GoldRequestSerializer,
        responses={200: GoldSerializer, 400: ErrorsSerializer},
        summary="Mark a comparison as gold with its known answer, or unmark it",
    )
    def put(self, request: Request, slug: str, comparison_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        comparison = get_object_or_404(Comparison, project=project, pk=comparison_id)
        gold_choice = validated(GoldRequestSerializer, request.data)["gold_choice"]
        comparison = comparison_gold_set(comparison=comparison, gold_choice=gold_choice)
        return Response(
            {"id": comparison.pk, "is_gold": comparison.is_gold, "gold_choice": comparison.gold_choice}
        )

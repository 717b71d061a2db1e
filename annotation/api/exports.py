"""Exports over the API (researchers and admins): queue one, watch it, download the file."""

from collections.abc import Mapping

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from alignweb.jobs import JobState
from annotation.api.errors import RequestSerializer, validated
from annotation.api.serializers import ErrorsSerializer
from annotation.exporters import available_formats, get_exporter
from annotation.models import Export
from annotation.permissions import MANAGE_DATA, project_for_action
from annotation.services.errors import Conflict
from annotation.services.export_jobs import export_create, export_file_path
from annotation.services.exports import AGGREGATIONS, TIE_POLICIES, ExportOptions

LIST_LIMIT = 50


class ExportRequestSerializer(RequestSerializer):
    """The options of one export. The fields describe the body; ``ExportOptions.from_dict``, which
    the dashboard's form and the command line share, decides what is valid and names the field."""

    format = serializers.ChoiceField(choices=available_formats())
    aggregation = serializers.ChoiceField(choices=AGGREGATIONS, required=False, help_text="Default majority.")
    ties = serializers.ChoiceField(choices=TIE_POLICIES, required=False, help_text="Default exclude.")
    conversational = serializers.BooleanField(required=False)
    include_imported = serializers.BooleanField(required=False, help_text="Default true.")
    pseudonymise = serializers.BooleanField(required=False, help_text="Default true.")
    date_from = serializers.DateField(required=False, allow_null=True)
    date_to = serializers.DateField(required=False, allow_null=True)
    annotators = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Usernames (or one comma-separated string)."
    )
    min_gold_accuracy = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    exclude_flagged = serializers.BooleanField(required=False)
    min_agreement = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    min_votes = serializers.IntegerField(required=False, min_value=1, help_text="Default 1.")
    model_versions = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Names (or one comma-separated string)."
    )

    def to_internal_value(self, data) -> dict:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [self.error_messages["invalid"]]}
            )
        return {"options": ExportOptions.from_dict(data)}


class ExportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    format = serializers.CharField()
    options = serializers.DictField(help_text="Every option, defaults filled in.")
    status = serializers.ChoiceField(choices=JobState.choices)
    rows = serializers.IntegerField()
    sha256 = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    download_url = serializers.URLField(allow_null=True, help_text="Once the export succeeded.")


def export_payload(export: Export, request: Request) -> dict:
    ready = export.state == "succeeded"
    return {
        "id": export.pk,
        "format": export.format,
        "options": export.options,
        "status": export.state,
        "rows": export.rows,
        "sha256": export.sha256,
        "error": export.error,
        "created_at": export.created_at,
        "finished_at": export.finished_at,
        "download_url": reverse(
            "api-project-export-download", args=[export.project.slug, export.pk], request=request
        )
        if ready
        else None,
    }


class ExportListApi(APIView):
    @extend_schema(
        responses=ExportSerializer(many=True),
        summary="The project's latest exports",
        operation_id="project_exports_list",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        exports = (
            Export.objects.filter(project=project).select_related("project").order_by("-id")[:LIST_LIMIT]
        )
        return Response([export_payload(export, request) for export in exports])

    @extend_schema(
        request=ExportRequestSerializer,
        responses={202: ExportSerializer, 400: ErrorsSerializer},
        summary="Queue an export",
        operation_id="project_exports_create",
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        options = validated(ExportRequestSerializer, request.data)["options"]
        export = export_create(project=project, options=options, user=request.user)
        return Response(export_payload(export, request), status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    @extend_schema(
        responses=ExportSerializer,
        summary="One export's status, row count and hash",
        operation_id="project_export_retrieve",
    )
    def get(self, request: Request, slug: str, export_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        export = get_object_or_404(Export.objects.select_related("project"), project=project, pk=export_id)
        return Response(export_payload(export, request))


class ExportDownloadApi(APIView):
    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 409: ErrorsSerializer},
        summary="The file",
        operation_id="project_export_download",
    )
    def get(self, request: Request, slug: str, export_id: int):
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        export = get_object_or_404(Export, project=project, pk=export_id)
        path = export_file_path(export)
        if path is None:
            raise Conflict(f"The export is {export.state}, not ready to download.")
        exporter = get_exporter(export.format)
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=f"{project.slug}-{export.pk}-{export.format}.{exporter.extension}",
            content_type=exporter.content_type,
        )

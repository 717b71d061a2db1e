"""Exports over the API (researchers and admins): queue one, watch it, download the file."""

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from annotation.exporters import get_exporter
from annotation.models import Export
from annotation.permissions import MANAGE_DATA, project_for_action
from annotation.services.errors import ServiceError
from annotation.services.export_jobs import export_create, export_file_path
from annotation.services.exports import ExportOptions

LIST_LIMIT = 50


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
        responses=OpenApiTypes.OBJECT,
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
        request=OpenApiTypes.OBJECT,
        responses={202: OpenApiTypes.OBJECT},
        summary="Queue an export",
        operation_id="project_exports_create",
        description=(
            "Body: `format` (trl, votes, hh, csv, parquet) and optional `aggregation` (majority, "
            "unanimous, weighted), `ties` (exclude, label), `conversational`, `include_imported`, "
            "`pseudonymise`, `date_from`, `date_to`, `annotators`, `min_gold_accuracy`, "
            "`exclude_flagged`, `min_agreement`, `min_votes`, `model_versions`."
        ),
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        if not isinstance(request.data, dict):
            return Response({"errors": {"non_field_errors": ["Send a JSON object."]}}, status=400)
        try:
            options = ExportOptions.from_dict(request.data)
        except ServiceError as error:
            return Response(error.as_dict(), status=error.status_code)
        export = export_create(project=project, options=options, user=request.user)
        return Response(export_payload(export, request), status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="One export's status, row count and hash",
        operation_id="project_export_retrieve",
    )
    def get(self, request: Request, slug: str, export_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        export = get_object_or_404(Export.objects.select_related("project"), project=project, pk=export_id)
        return Response(export_payload(export, request))


class ExportDownloadApi(APIView):
    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        summary="The file",
        operation_id="project_export_download",
    )
    def get(self, request: Request, slug: str, export_id: int):
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        export = get_object_or_404(Export, project=project, pk=export_id)
        path = export_file_path(export)
        if path is None:
            return Response(
                {"errors": {"non_field_errors": [f"The export is {export.state}, not ready to download."]}},
                status=status.HTTP_409_CONFLICT,
            )
        exporter = get_exporter(export.format)
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=f"{project.slug}-{export.pk}-{export.format}.{exporter.extension}",
            content_type=exporter.content_type,
        )

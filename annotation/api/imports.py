"""``POST /api/projects/{slug}/imports/``: upload a file (multipart ``file`` and ``format``).

201 with the ImportBatch; 400 ``{"errors": {"file": [...]}, "problems": [{"line", "field",
"message"}], "problem_count"}`` when the file is refused; 404 unless the caller is a researcher
or admin of the project.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.errors import validated
from annotation.importers import format_choices
from annotation.models import ImportBatch
from annotation.selectors import MANAGERS, project_for_user
from annotation.services.imports import preferences_import


class ImportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=format_choices())
    file = serializers.FileField()


class ImportBatchSerializer(serializers.ModelSerializer):
    created_by = serializers.StringRelatedField()

    class Meta:
        model = ImportBatch
        fields = ["id", "format", "filename", "sha256", "rows", "created", "created_by", "created_at"]


_RejectedSerializer = inline_serializer(
    "ImportRejected",
    {
        "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
        "problems": inline_serializer(
            "ImportProblem",
            {
                "line": serializers.IntegerField(allow_null=True),
                "field": serializers.CharField(),
                "message": serializers.CharField(),
            },
            many=True,
            required=False,
        ),
        "problem_count": serializers.IntegerField(required=False),
    },
)


class ProjectImportApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": ImportRequestSerializer},
        responses={
            201: ImportBatchSerializer,
            400: OpenApiResponse(_RejectedSerializer, description="The file was refused whole."),
            404: OpenApiResponse(description="No such project, or not a researcher/admin of it."),
        },
        summary="Import prompts, responses and comparisons from a file",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, roles=MANAGERS)
        given = validated(ImportRequestSerializer, request.data)
        batch = preferences_import(
            project=project,
            fmt=given["format"],
            file=given["file"],
            filename=given["file"].name,
            user=request.user,
        )
        return Response(ImportBatchSerializer(batch).data, status=status.HTTP_201_CREATED)

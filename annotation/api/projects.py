"""Projects as their members see them, and a project's data for researchers."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.serializers import (
    ComparisonSerializer,
    ProgressSerializer,
    ProjectSerializer,
    StatsSerializer,
)
from annotation.permissions import ANNOTATE, MANAGE_DATA, project_for_action
from annotation.selectors import comparisons_for_project, project_progress, project_stats, projects_with_roles


class ProjectListApi(APIView):
    @extend_schema(responses=ProjectSerializer(many=True), summary="Projects you are a member of")
    def get(self, request: Request) -> Response:
        rows = projects_with_roles(user=request.user)
        roles = {project.pk: role for project, role in rows}
        serializer = ProjectSerializer([project for project, _ in rows], many=True, context={"roles": roles})
        return Response(serializer.data)


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectSerializer, summary="A project's guidelines and label scheme")
    def get(self, request: Request, slug: str) -> Response:
        project, role = project_for_action(user=request.user, slug=slug, allowed=ANNOTATE)
        return Response(ProjectSerializer(project, context={"roles": {project.pk: role}}).data)


class ProgressApi(APIView):
    @extend_schema(responses=ProgressSerializer, summary="Your progress in a project")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=ANNOTATE)
        return Response(project_progress(project=project, annotator=request.user))


class StatsApi(APIView):
    @extend_schema(responses=StatsSerializer, summary="Counts for researchers (researchers and admins)")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        return Response(project_stats(project=project))


class ComparisonListApi(APIView):
    class Pagination(PageNumberPagination):
        page_size = 50
        page_size_query_param = "page_size"
        max_page_size = 500

    @extend_schema(
        responses=ComparisonSerializer(many=True),
        parameters=[
            OpenApiParameter("page", int, description="Page number, from 1."),
            OpenApiParameter("page_size", int, description="Items per page (at most 500)."),
        ],
        summary="A project's comparisons with their responses (researchers and admins)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        paginator = self.Pagination()
        page = paginator.paginate_queryset(comparisons_for_project(project=project), request, view=self)
        return paginator.get_paginated_response(ComparisonSerializer(page, many=True).data)

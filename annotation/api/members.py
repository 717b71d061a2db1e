"""A project's members, managed by its admins."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.errors import validated
from annotation.api.serializers import ErrorsSerializer, MemberSerializer, MemberSetSerializer
from annotation.models import Membership
from annotation.permissions import MANAGE_MEMBERS, project_for_action
from annotation.services.members import membership_remove, membership_set


class MemberListApi(APIView):
    @extend_schema(responses=MemberSerializer(many=True), summary="A project's members (admins)")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_MEMBERS)
        members = Membership.objects.filter(project=project).order_by("user__username")
        rows = members.values("role", "user__username")
        return Response([{"username": row["user__username"], "role": row["role"]} for row in rows])

    @extend_schema(
        request=MemberSetSerializer,
        responses={201: MemberSerializer, 200: MemberSerializer, 400: ErrorsSerializer},
        summary="Add a member (by username and their account's email) or change a member's role (admins)",
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_MEMBERS)
        membership, created = membership_set(project=project, **validated(MemberSetSerializer, request.data))
        body = {"username": membership.user.username, "role": membership.role}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MemberDetailApi(APIView):
    @extend_schema(
        responses={204: OpenApiResponse(description="Removed."), 400: ErrorsSerializer},
        summary="Remove a member (admins)",
    )
    def delete(self, request: Request, slug: str, username: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_MEMBERS)
        membership_remove(project=project, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)

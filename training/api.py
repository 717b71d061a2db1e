"""The closed loop over the REST API (routed under ``/api/`` by ``alignweb/urls.py``).

Researchers and admins read runs, versions (with their automatic evaluations), generation jobs and
the leaderboard; admins start and cancel runs, register and promote versions, queue generation and
set the queue order.
"""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.errors import validated
from annotation.api.serializers import ErrorsSerializer
from annotation.models import Role
from annotation.permissions import MANAGE_DATA, project_for_action
from training import selectors
from training.serializers import (
    GenerationJobSerializer,
    GenerationRequestSerializer,
    LeaderboardSerializer,
    LoopSettingsRequestSerializer,
    LoopSettingsSerializer,
    PromoteRequestSerializer,
    RunDetailSerializer,
    RunRequestSerializer,
    RunSerializer,
    VersionDetailSerializer,
    VersionEvaluationSerializer,
    VersionRequestSerializer,
    VersionSerializer,
)
from training.services.active_learning import queue_order_set
from training.services.closed_loop import closed_loop_start
from training.services.generation import generation_job_create
from training.services.registry import version_create, version_promote
from training.services.runs import run_cancel, run_create

TRAIN = frozenset({Role.ADMIN})
LIST_LIMIT = 100
REFUSED = {400: ErrorsSerializer, 409: ErrorsSerializer}


def loop_settings_payload(loop) -> dict:
    return {"queue_order": loop.queue_order, "responses_per_prompt": loop.responses_per_prompt}


class RunListApi(APIView):
    @extend_schema(
        responses=RunSerializer(many=True),
        summary="The project's training runs, newest first",
        operation_id="projects_runs_list",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        runs = selectors.runs_for_project(project=project).prefetch_related("versions")[:LIST_LIMIT]
        return Response([selectors.run_payload(run=run) for run in runs])

    @extend_schema(
        request=RunRequestSerializer,
        responses={202: RunSerializer, **REFUSED},
        summary="Start a training run (admins)",
        description="409 when a run of this kind is already active (unless `force`). The online RL "
        "kinds (rloo, ppo, soft_q: experimental) tune a policy against the project's active scorer on "
        "the prompts of the snapshot's training half; 400 when the project has no active scorer or the "
        "config names a `reward_model`.",
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        body = validated(RunRequestSerializer, request.data, project=project)
        run = run_create(
            project=project,
            kind=body["kind"],
            config=body["config"],
            filters=body["filters"] or {},
            base_version=body["base_version"],
            name=body["name"],
            force=body["force"],
            created_by=request.user,
            promote_when_done=body["promote_when_done"],
        )
        return Response(selectors.run_payload(run=run), status=status.HTTP_202_ACCEPTED)


class ClosedLoopApi(APIView):
    @extend_schema(
        request=None,
        responses={202: RunSerializer(many=True), **REFUSED},
        summary="Train and serve: the run page's one-click loop (admins)",
        description="Queues a reward-model run and a DPO LoRA run with the run form's default configs, "
        "each promoted when it succeeds (the reward model to active scorer, the tuned policy to "
        "serving, which queues tuned-vs-base comparisons on held-back prompts). Both or neither: 409 "
        "when a run of either kind is active, 400 when there are no votes to train on.",
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        runs = closed_loop_start(project=project, created_by=request.user)
        return Response([selectors.run_payload(run=run) for run in runs], status=status.HTTP_202_ACCEPTED)


class RunDetailApi(APIView):
    @extend_schema(responses=RunDetailSerializer, summary="One run: progress, metric series, log tail")
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        run = selectors.run_for_project(project=project, run_id=run_id)
        return Response(selectors.run_payload(run=run, with_series=True))


class RunCancelApi(APIView):
    @extend_schema(request=None, responses={200: RunSerializer, **REFUSED}, summary="Cancel a run (admins)")
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        run = run_cancel(run=selectors.run_for_project(project=project, run_id=run_id))
        return Response(selectors.run_payload(run=run))


class VersionListApi(APIView):
    @extend_schema(
        responses=VersionSerializer(many=True),
        summary="The project's model versions",
        operation_id="projects_model_versions_list",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        versions = selectors.versions_for_project(project=project)[:LIST_LIMIT]
        return Response([selectors.version_payload(version=v) for v in versions])

    @extend_schema(
        request=VersionRequestSerializer,
        responses={201: VersionSerializer, **REFUSED},
        summary="Register a base model, checkpoint or OpenAI-compatible endpoint (admins)",
        description="Give `base_model` / `checkpoint_path`, or `endpoint_url` + `endpoint_model`.",
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        version = version_create(
            project=project, **validated(VersionRequestSerializer, request.data, project=project)
        )
        return Response(selectors.version_payload(version=version), status=status.HTTP_201_CREATED)


class VersionDetailApi(APIView):
    @extend_schema(responses=VersionDetailSerializer, summary="One version with its lineage")
    def get(self, request: Request, slug: str, version_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        version = selectors.version_for_project(project=project, version_id=version_id)
        payload = selectors.version_payload(version=version)
        payload["ancestors"] = [v.name for v in selectors.version_lineage(version=version)[1:]]
        payload["evaluations"] = _evaluations(version)
        return Response(payload)


def _evaluations(version) -> list[dict]:
    rows = selectors.evaluations_of_versions(versions=[version])
    return [selectors.evaluation_payload(evaluation=e) for e in rows]


class VersionEvaluationListApi(APIView):
    @extend_schema(
        responses=VersionEvaluationSerializer(many=True),
        summary="A policy version's automatic evaluations",
        description="Queued when a policy run succeeds: the tuned version against its base and against "
        "the version that served before it, on the held-back prompts, judged by the project's active "
        "scorer (named in `judge`). Skipped, with the reason in `error`, without a scorer or prompts.",
        operation_id="projects_model_versions_evaluations_list",
    )
    def get(self, request: Request, slug: str, version_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        version = selectors.version_for_project(project=project, version_id=version_id)
        return Response(_evaluations(version))


class VersionPromoteApi(APIView):
    @extend_schema(
        request=PromoteRequestSerializer,
        responses={200: VersionSerializer, **REFUSED},
        summary="Promote a version (admins)",
    )
    def post(self, request: Request, slug: str, version_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        version = selectors.version_for_project(project=project, version_id=version_id)
        wanted = validated(PromoteRequestSerializer, request.data)["status"]
        version = version_promote(version=version, status=wanted, created_by=request.user)
        return Response(selectors.version_payload(version=version))


class GenerationListApi(APIView):
    @extend_schema(
        responses=GenerationJobSerializer(many=True),
        summary="The project's generation jobs",
        operation_id="projects_generations_list",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        jobs = selectors.generation_jobs_for_project(project=project)[:LIST_LIMIT]
        return Response([selectors.generation_payload(job=job) for job in jobs])

    @extend_schema(
        request=GenerationRequestSerializer,
        responses={202: GenerationJobSerializer, **REFUSED},
        summary="Generate responses and comparisons (admins)",
        description="Held-back prompts only unless `held_back_only` is false.",
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        body = validated(GenerationRequestSerializer, request.data, project=project)
        job = generation_job_create(
            project=project,
            model_version=body["model_version"],
            opponent=body["opponent"],
            k=body["k"],
            params=body["params"] or {},
            held_back_only=body["held_back_only"],
            prompt_limit=body["prompt_limit"],
            created_by=request.user,
        )
        return Response(selectors.generation_payload(job=job), status=status.HTTP_202_ACCEPTED)


class LoopSettingsApi(APIView):
    @extend_schema(
        responses=LoopSettingsSerializer, summary="The project's queue order and generation defaults"
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        return Response(loop_settings_payload(selectors.loop_settings_for(project=project)))

    @extend_schema(
        request=LoopSettingsRequestSerializer,
        responses={200: LoopSettingsSerializer, **REFUSED},
        summary="Set the queue order (admins)",
        description="The pending comparisons are re-scored.",
    )
    def patch(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        queue_order = validated(LoopSettingsRequestSerializer, request.data)["queue_order"]
        return Response(loop_settings_payload(queue_order_set(project=project, queue_order=queue_order)))


class LeaderboardApi(APIView):
    @extend_schema(
        responses=LeaderboardSerializer,
        summary="Arena leaderboard of model versions from human votes",
        description="Bradley-Terry ratings (Elo scale, ties count half, both-bad counts as a tie) with "
        "bootstrap 95% intervals, the win-rate matrix and votes per pair.",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        return Response(selectors.project_leaderboard(project=project).to_dict())


urlpatterns = [
    path("projects/<slug:slug>/runs/", RunListApi.as_view(), name="api-runs"),
    path("projects/<slug:slug>/loop/", ClosedLoopApi.as_view(), name="api-closed-loop"),
    path("projects/<slug:slug>/runs/<int:run_id>/", RunDetailApi.as_view(), name="api-run"),
    path("projects/<slug:slug>/runs/<int:run_id>/cancel/", RunCancelApi.as_view(), name="api-run-cancel"),
    path("projects/<slug:slug>/model-versions/", VersionListApi.as_view(), name="api-versions"),
    path(
        "projects/<slug:slug>/model-versions/<int:version_id>/",
        VersionDetailApi.as_view(),
        name="api-version",
    ),
    path(
        "projects/<slug:slug>/model-versions/<int:version_id>/evaluations/",
        VersionEvaluationListApi.as_view(),
        name="api-version-evaluations",
    ),
    path(
        "projects/<slug:slug>/model-versions/<int:version_id>/promote/",
        VersionPromoteApi.as_view(),
        name="api-version-promote",
    ),
    path("projects/<slug:slug>/generations/", GenerationListApi.as_view(), name="api-generations"),
    path("projects/<slug:slug>/loop-settings/", LoopSettingsApi.as_view(), name="api-loop-settings"),
    path("projects/<slug:slug>/leaderboard/", LeaderboardApi.as_view(), name="api-leaderboard"),
]

"""The closed loop over the REST API (routed under ``/api/`` by ``alignweb/urls.py``).

Researchers and admins read runs, versions, generation jobs and the leaderboard; admins start
and cancel runs, register and promote versions, queue generation and set the queue order.
"""

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Role
from annotation.permissions import MANAGE_DATA, project_for_action
from annotation.services.errors import ServiceError, ValidationFailed
from training import selectors
from training.services.active_learning import queue_order_set
from training.services.closed_loop import closed_loop_start
from training.services.generation import generation_job_create
from training.services.registry import version_create, version_promote
from training.services.runs import run_cancel, run_create

TRAIN = frozenset({Role.ADMIN})
LIST_LIMIT = 100


def _error(error: ServiceError) -> Response:
    return Response(error.as_dict(), status=error.status_code)


def _body(request: Request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationFailed("Send a JSON object.")
    return request.data


def _optional_version(project, raw, field: str):
    if raw in (None, ""):
        return None
    if not isinstance(raw, int):
        raise ValidationFailed("Give the version's id.", field=field)
    return selectors.version_for_project(project=project, version_id=raw)


class RunListApi(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="The project's training runs, newest first",
        operation_id="projects_runs_list",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        runs = selectors.runs_for_project(project=project).prefetch_related("versions")[:LIST_LIMIT]
        return Response([selectors.run_payload(run=run) for run in runs])

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={202: OpenApiTypes.OBJECT},
        summary="Start a training run (admins)",
        description=(
            "Body: `kind` (reward_model, dpo, contrastive), `config` (the ML core's config for that "
            'kind, e.g. {"model": "minilm-l6", "max_steps": 50}), optional `filters` '
            "(gold_checked_only, min_agreement, since, until, include_prior_labels, eval_fraction), "
            "`base_version` (id), `name`, `force` (start next to an active run of the same kind), "
            "`promote_when_done` (on success, promote its version: a policy to serving, a reward "
            "model to active scorer). 409 when a run of this kind is already active."
        ),
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        try:
            body = _body(request)
            force, promote = body.get("force", False), body.get("promote_when_done", False)
            for field, value in (("force", force), ("promote_when_done", promote)):
                if not isinstance(value, bool):
                    raise ValidationFailed(f"{field} must be true or false.", field=field)
            run = run_create(
                project=project,
                kind=body.get("kind", ""),
                config=body.get("config", {}),
                filters=body.get("filters") or {},
                base_version=_optional_version(project, body.get("base_version"), "base_version"),
                name=str(body.get("name", "")),
                force=force,
                created_by=request.user,
                promote_when_done=promote,
            )
        except ServiceError as error:
            return _error(error)
        return Response(selectors.run_payload(run=run), status=status.HTTP_202_ACCEPTED)


class ClosedLoopApi(APIView):
    @extend_schema(
        request=None,
        responses={202: OpenApiTypes.OBJECT},
        summary="Train and serve: the run page's one-click loop (admins)",
        description="Queues a reward-model run and a DPO LoRA run with the run form's default configs, "
        "each promoted when it succeeds (the reward model to active scorer, the tuned policy to "
        "serving, which queues tuned-vs-base comparisons on held-back prompts). Both or neither: 409 "
        "when a run of either kind is active, 400 when there are no votes to train on.",
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        try:
            runs = closed_loop_start(project=project, created_by=request.user)
        except ServiceError as error:
            return _error(error)
        return Response([selectors.run_payload(run=run) for run in runs], status=status.HTTP_202_ACCEPTED)


class RunDetailApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="One run: progress, metric series, log tail")
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        run = selectors.run_for_project(project=project, run_id=run_id)
        return Response(selectors.run_payload(run=run, with_series=True))


class RunCancelApi(APIView):
    @extend_schema(request=None, responses=OpenApiTypes.OBJECT, summary="Cancel a run (admins)")
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        run = selectors.run_for_project(project=project, run_id=run_id)
        try:
            run = run_cancel(run=run)
        except ServiceError as error:
            return _error(error)
        return Response(selectors.run_payload(run=run))


class VersionListApi(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="The project's model versions",
        operation_id="projects_model_versions_list",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        versions = selectors.versions_for_project(project=project)[:LIST_LIMIT]
        return Response([selectors.version_payload(version=v) for v in versions])

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT},
        summary="Register a base model, checkpoint or OpenAI-compatible endpoint (admins)",
        description="Body: `name`, `kind` (policy, reward), and either `base_model` / `checkpoint_path` "
        "or `endpoint_url` + `endpoint_model`; optional `parent` (id).",
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        try:
            body = _body(request)
            version = version_create(
                project=project,
                name=str(body.get("name", "")),
                kind=str(body.get("kind", "policy")),
                base_model=str(body.get("base_model", "")),
                checkpoint_path=str(body.get("checkpoint_path", "")),
                endpoint_url=str(body.get("endpoint_url", "")),
                endpoint_model=str(body.get("endpoint_model", "")),
                parent=_optional_version(project, body.get("parent"), "parent"),
            )
        except ServiceError as error:
            return _error(error)
        return Response(selectors.version_payload(version=version), status=status.HTTP_201_CREATED)


class VersionDetailApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="One version with its lineage")
    def get(self, request: Request, slug: str, version_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        version = selectors.version_for_project(project=project, version_id=version_id)
        payload = selectors.version_payload(version=version)
        payload["ancestors"] = [v.name for v in selectors.version_lineage(version=version)[1:]]
        return Response(payload)


class VersionPromoteApi(APIView):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=OpenApiTypes.OBJECT,
        summary="Promote a version (admins)",
        description="Body: `status`: `serving` (a policy; queues generation of new comparisons on "
        "held-back prompts) or `active_scorer` (a reward model; re-orders the pending queue).",
    )
    def post(self, request: Request, slug: str, version_id: int) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        version = selectors.version_for_project(project=project, version_id=version_id)
        try:
            version = version_promote(
                version=version, status=str(_body(request).get("status", "")), created_by=request.user
            )
        except ServiceError as error:
            return _error(error)
        return Response(selectors.version_payload(version=version))


class GenerationListApi(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="The project's generation jobs",
        operation_id="projects_generations_list",
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        jobs = selectors.generation_jobs_for_project(project=project)[:LIST_LIMIT]
        return Response([selectors.generation_payload(job=job) for job in jobs])

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={202: OpenApiTypes.OBJECT},
        summary="Generate responses and comparisons (admins)",
        description="Body: `model_version` (id), optional `opponent` (id; default: imported "
        "responses), `k`, `params` (max_new_tokens, temperature, top_p, seed), `held_back_only` "
        "(default true), `prompt_limit`.",
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        try:
            body = _body(request)
            version = _optional_version(project, body.get("model_version"), "model_version")
            if version is None:
                raise ValidationFailed("Name the model version to generate from.", field="model_version")
            held_back_only = body.get("held_back_only", True)
            if not isinstance(held_back_only, bool):
                raise ValidationFailed("held_back_only must be true or false.", field="held_back_only")
            job = generation_job_create(
                project=project,
                model_version=version,
                opponent=_optional_version(project, body.get("opponent"), "opponent"),
                k=body.get("k"),
                params=body.get("params") or {},
                held_back_only=held_back_only,
                prompt_limit=body.get("prompt_limit"),
                created_by=request.user,
            )
        except ServiceError as error:
            return _error(error)
        return Response(selectors.generation_payload(job=job), status=status.HTTP_202_ACCEPTED)


class LoopSettingsApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="The project's queue order and generation defaults")
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=MANAGE_DATA)
        loop = selectors.loop_settings_for(project=project)
        return Response({"queue_order": loop.queue_order, "responses_per_prompt": loop.responses_per_prompt})

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=OpenApiTypes.OBJECT,
        summary="Set the queue order (admins)",
        description="Body: `queue_order`: `uncertainty` (most uncertain first by the active scorer), "
        "`informative` (most informative first: BALD under a Laplace posterior of the active scorer's "
        "head, fitted on the project's decided judgements; a new project's default) or `random`. The "
        "pending comparisons are re-scored.",
    )
    def patch(self, request: Request, slug: str) -> Response:
        project, _ = project_for_action(user=request.user, slug=slug, allowed=TRAIN)
        try:
            loop = queue_order_set(project=project, queue_order=str(_body(request).get("queue_order", "")))
        except ServiceError as error:
            return _error(error)
        return Response({"queue_order": loop.queue_order, "responses_per_prompt": loop.responses_per_prompt})


class LeaderboardApi(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
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
        "projects/<slug:slug>/model-versions/<int:version_id>/promote/",
        VersionPromoteApi.as_view(),
        name="api-version-promote",
    ),
    path("projects/<slug:slug>/generations/", GenerationListApi.as_view(), name="api-generations"),
    path("projects/<slug:slug>/loop-settings/", LoopSettingsApi.as_view(), name="api-loop-settings"),
    path("projects/<slug:slug>/leaderboard/", LeaderboardApi.as_view(), name="api-leaderboard"),
]

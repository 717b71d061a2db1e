"""Pages of the closed loop: runs (start, watch, cancel, compare), the registry and the arena
leaderboard. Researchers and admins see them; only admins change anything. The run page polls
``/api/projects/<slug>/runs/<id>/`` (``static/js/run.js``) for live progress and curves."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.models import Role
from annotation.parsing import form_checkbox
from annotation.selectors import MANAGERS, project_with_role
from annotation.services.errors import ValidationFailed
from annotation.views.refusals import refused_to
from training import selectors
from training.demo_configs import DEMO_CONFIGS
from training.endpoint_keys import key_prefix
from training.models import RL_RUN_KINDS, ModelKind, QueueOrder, RunKind
from training.run_charts import charts_for_kind
from training.services.active_learning import queue_order_set
from training.services.closed_loop import closed_loop_start
from training.services.configs import run_config_fields
from training.services.registry import RUN_KIND_TO_MODEL_KIND, version_create, version_promote
from training.services.runs import run_cancel, run_create


def _project(request: HttpRequest, slug: str, *, admin: bool = False):
    project, role = project_with_role(user=request.user, slug=slug)
    if role not in MANAGERS or (admin and role != Role.ADMIN):
        raise PermissionDenied("Training pages are for researchers and admins; changes are for admins.")
    return project, role


@login_required
def run_list(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = _project(request, slug)
    runs = list(selectors.runs_for_project(project=project).prefetch_related("versions")[:100])
    context = {
        "project": project,
        "is_admin": role == Role.ADMIN,
        "runs": runs,
        "versions": list(selectors.versions_with_evaluations(project=project)[:100]),
        "jobs": list(selectors.generation_jobs_for_project(project=project)[:20]),
        "loop": selectors.loop_settings_for(project=project),
        "kinds": RunKind.choices,
        "kind_fields": [
            {"kind": value, "label": label, **run_config_fields(kind=value)}
            for value, label in RunKind.choices
        ],
        "queue_orders": QueueOrder.choices,
        "default_configs": DEMO_CONFIGS,
        "endpoint_key_prefix": key_prefix(),
        "default_config": json.dumps(DEMO_CONFIGS[RunKind.REWARD_MODEL], indent=2),
    }
    return render(request, "training/run_list.html", context)


def _json_field(request: HttpRequest, name: str) -> dict:
    raw = request.POST.get(name, "").strip() or "{}"
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise ValidationFailed(f"{name} is not valid JSON: {error}", field=name) from None
    if not isinstance(value, dict):
        raise ValidationFailed(f"{name} must be a JSON object.", field=name)
    return value


@login_required
@require_POST
@refused_to("training-runs", "slug")
def run_start(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    filters = {
        "gold_checked_only": form_checkbox(request.POST, "gold_checked_only"),
        "include_prior_labels": form_checkbox(request.POST, "include_prior_labels"),
    }
    if request.POST.get("min_agreement"):
        try:
            filters["min_agreement"] = float(request.POST["min_agreement"])
        except ValueError:
            raise ValidationFailed("min_agreement must be a number.", field="min_agreement") from None
    if request.POST.get("max_examples"):
        try:
            filters["max_examples"] = int(request.POST["max_examples"])
        except ValueError:
            raise ValidationFailed("max_examples must be a whole number.", field="max_examples") from None
    for bound in ("since", "until"):
        if request.POST.get(bound):
            filters[bound] = request.POST[bound]
    base_id = request.POST.get("base_version")
    base = selectors.version_for_project(project=project, version_id=int(base_id)) if base_id else None
    run = run_create(
        project=project,
        kind=request.POST.get("kind", ""),
        config=_json_field(request, "config"),
        filters=filters,
        base_version=base,
        name=request.POST.get("name", ""),
        force=form_checkbox(request.POST, "force"),
        created_by=request.user,
    )
    messages.success(request, f"Run {run.pk} is queued for a training worker.")
    return redirect("training-run", slug=project.slug, run_id=run.pk)


@login_required
def run_detail(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    project, role = _project(request, slug)
    run = selectors.run_for_project(project=project, run_id=run_id)
    context = {
        "project": project,
        "run": run,
        "is_admin": role == Role.ADMIN,
        "initial": selectors.run_payload(run=run, with_series=True),
        "config_json": json.dumps(run.config, indent=2),
        "charts": charts_for_kind(run.kind),
        "produces_policy": RUN_KIND_TO_MODEL_KIND.get(run.kind) == ModelKind.POLICY,
        "evaluations": list(selectors.evaluations_of_versions(versions=run.versions.all())),
    }
    return render(request, "training/run_detail.html", context)


@login_required
@require_POST
@refused_to("training-runs", "slug")
def closed_loop_start_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    reward, dpo = closed_loop_start(project=project, created_by=request.user)
    messages.success(
        request,
        f"Runs {reward.pk} (reward model) and {dpo.pk} (DPO LoRA) are queued. As each succeeds it is "
        "promoted: the reward model orders the queue, the tuned policy's responses join it.",
    )
    return redirect("training-runs", slug=project.slug)


@login_required
@require_POST
@refused_to("training-run", "slug", "run_id")
def run_cancel_view(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    run = selectors.run_for_project(project=project, run_id=run_id)
    run = run_cancel(run=run)
    messages.success(
        request, "Cancelled." if run.state == "cancelled" else "Asked the run to stop after this step."
    )
    return redirect("training-run", slug=project.slug, run_id=run.pk)


@login_required
def run_compare(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug)
    try:
        ids = [int(i) for i in request.GET.getlist("run") if i.strip()]
    except ValueError:
        ids = []
    runs = [r for r in selectors.runs_for_project(project=project).filter(pk__in=ids[:8])]
    payloads = [selectors.run_payload(run=run, with_series=True) for run in runs]
    metric_names = sorted({key for run in runs for v in run.versions.all() for key in v.metrics})
    config_keys = sorted({key for run in runs for key in run.config})
    rows = [
        {"key": key, "values": [json.dumps(run.config.get(key)) for run in runs],
         "differs": len({json.dumps(run.config.get(key)) for run in runs}) > 1}
        for key in config_keys
    ]  # fmt: skip
    metrics = [
        {"key": key, "values": [next((v.metrics.get(key) for v in run.versions.all()), None) for run in runs]}
        for key in metric_names
    ]
    context = {
        "project": project,
        "runs": runs,
        "config_rows": rows,
        "metric_rows": metrics,
        "payloads": payloads,
        "any_rl": any(run.kind in RL_RUN_KINDS for run in runs),
    }
    return render(request, "training/run_compare.html", context)


@login_required
@require_POST
@refused_to("training-runs", "slug")
def version_register(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    version = version_create(
        project=project,
        name=request.POST.get("name", ""),
        kind=request.POST.get("kind", "policy"),
        base_model=request.POST.get("base_model", "").strip(),
        endpoint_url=request.POST.get("endpoint_url", "").strip(),
        endpoint_model=request.POST.get("endpoint_model", "").strip(),
        api_key_env=request.POST.get("api_key_env", "").strip(),
    )
    messages.success(request, f"Registered {version.name}.")
    return redirect("training-runs", slug=project.slug)


@login_required
@require_POST
@refused_to("training-runs", "slug")
def version_promote_view(request: HttpRequest, slug: str, version_id: int) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    version = selectors.version_for_project(project=project, version_id=version_id)
    version = version_promote(version=version, status=request.POST.get("status", ""), created_by=request.user)
    job = version.generation_jobs.order_by("-id").first() if version.status == "serving" else None
    if job is not None and job.prompts_total == 0:
        messages.warning(
            request,
            f"{version.name} now serves, but no prompt is held back, so there is nothing to generate on: "
            "mark some prompts as held back and queue generation again.",
        )
    elif version.status == "serving":
        messages.success(
            request,
            f"{version.name} now serves: new comparisons on held-back prompts are being generated.",
        )
    else:
        messages.success(request, f"{version.name} now orders the queue.")
    return redirect("training-runs", slug=project.slug)


@login_required
@require_POST
@refused_to("training-runs", "slug")
def queue_order_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug, admin=True)
    loop = queue_order_set(project=project, queue_order=request.POST.get("queue_order", ""))
    messages.success(request, f"Queue order: {loop.get_queue_order_display()}.")
    return redirect("training-runs", slug=project.slug)


@login_required
def leaderboard_view(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _project(request, slug)
    board = selectors.project_leaderboard(project=project)
    n = len(board.models)
    matrix = [
        {"model": model, "cells": [
            {"rate": board.win_rate[i][j], "votes": board.votes[i][j], "self": i == j} for j in range(n)
        ]}
        for i, model in enumerate(board.models)
    ]  # fmt: skip
    return render(
        request,
        "training/leaderboard.html",
        {
            "project": project,
            "board": board,
            "matrix": matrix,
            "battles": sum(r["battles"] for r in board.rows) // 2,
        },
    )

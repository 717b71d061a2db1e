"""Reads of the closed loop. Callers pass a project they already scoped to the user
(``annotation.selectors`` / ``annotation.permissions``); every lookup here filters on it, so
another project's run or version is a 404."""

from collections import defaultdict

from django.core.cache import cache
from django.db.models import Count, F, FilteredRelation, Max, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Concat, NullIf
from django.http import Http404

from annotation.models import Choice, Judgement, Project, Prompt
from training.leaderboard import Battle, Leaderboard, leaderboard
from training.models import (
    GenerationJob,
    LoopSettings,
    ModelVersion,
    RunKind,
    RunMetric,
    RunState,
    TrainingRun,
    VersionEvaluation,
)

OUTCOME = {Choice.A: "a", Choice.B: "b", Choice.TIE: "tie", Choice.BOTH_BAD: "tie"}


def runs_for_project(*, project: Project) -> QuerySet[TrainingRun]:
    return (
        TrainingRun.objects.filter(project=project).select_related("snapshot", "base_version").order_by("-id")
    )


def _one_or_404(queryset: QuerySet, *, pk: int, missing: str):
    """The row ``pk`` of ``queryset``; a 404 saying ``missing`` when the caller's scope has none."""
    try:
        return queryset.get(pk=pk)
    except queryset.model.DoesNotExist:
        raise Http404(missing) from None


def run_for_project(*, project: Project, run_id: int) -> TrainingRun:
    return _one_or_404(runs_for_project(project=project), pk=run_id, missing="No such run.")


def versions_for_project(*, project: Project) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(project=project)
        .select_related("parent", "run")
        .annotate(n_responses=Count("responses"))
        .order_by("-id")
    )


def version_for_project(*, project: Project, version_id: int) -> ModelVersion:
    return _one_or_404(
        ModelVersion.objects.filter(project=project), pk=version_id, missing="No such model version."
    )


def generation_jobs_for_project(*, project: Project) -> QuerySet[GenerationJob]:
    return (
        GenerationJob.objects.filter(project=project)
        .select_related("model_version", "opponent")
        .order_by("-id")
    )


def held_back_prompts(*, project: Project) -> QuerySet[Prompt]:
    """The prompts kept out of training so tuned models can be judged on them, oldest first."""
    return Prompt.objects.filter(project=project, held_back=True).order_by("id")


def evaluations_of_versions(*, versions) -> QuerySet[VersionEvaluation]:
    """The automatic evaluations of ``versions`` (a list or a queryset), against the base first."""
    return (
        VersionEvaluation.objects.filter(version__in=versions)
        .select_related("version", "opponent", "reference")
        .order_by("version_id", "opponent_role", "id")
    )


def versions_with_evaluations(*, project: Project) -> QuerySet[ModelVersion]:
    """The project's versions (as ``versions_for_project``), each with ``evaluation_rows``: its
    automatic evaluations, against the base first."""
    rows = VersionEvaluation.objects.select_related("version", "opponent", "reference").order_by(
        "opponent_role", "id"
    )
    return versions_for_project(project=project).prefetch_related(
        Prefetch("evaluations", queryset=rows, to_attr="evaluation_rows")
    )


def evaluation_payload(*, evaluation: VersionEvaluation) -> dict:
    return {
        "id": evaluation.pk,
        "version": {"id": evaluation.version_id, "name": evaluation.version.name},
        "opponent": {"id": evaluation.opponent_id, "name": evaluation.opponent.name},
        "opponent_role": evaluation.opponent_role,
        "reference": evaluation.reference.name if evaluation.reference_id else None,
        "judge": evaluation.judge_label,
        "state": evaluation.state,
        "n_prompts": evaluation.n_prompts,
        "win_rate": evaluation.win_rate,
        "ci_low": evaluation.ci_low,
        "ci_high": evaluation.ci_high,
        "wins": evaluation.wins,
        "ties": evaluation.ties,
        "losses": evaluation.losses,
        "mean_kl": evaluation.mean_kl,
        "mean_length_tuned": evaluation.mean_length_tuned,
        "mean_length_opponent": evaluation.mean_length_opponent,
        "settings": evaluation.settings,
        "error": evaluation.error,
        "created_at": evaluation.created_at,
        "finished_at": evaluation.finished_at,
    }


def loop_settings_for(*, project: Project) -> LoopSettings:
    return LoopSettings.objects.filter(project=project).first() or LoopSettings(project=project)


def reward_model_runs(*, project: Project) -> list[dict]:
    """Finished reward-model runs with their last evaluation accuracy, oldest first."""
    runs = TrainingRun.objects.filter(project=project, kind=RunKind.REWARD_MODEL, state=RunState.SUCCEEDED)
    rows = []
    for run in runs.order_by("finished_at", "id"):
        point = RunMetric.objects.filter(run=run, phase="eval").order_by("-step").first()
        accuracy = point.values.get("accuracy") if point else None
        rows.append({"run": run, "accuracy": accuracy if isinstance(accuracy, int | float) else None})
    return rows


def run_metric_series(*, run: TrainingRun) -> dict[str, list[dict]]:
    """``{"train": [{"step": 1, "loss": ...}, ...], "eval": [...]}``, each sorted by step."""
    series: dict[str, list[dict]] = {"train": [], "eval": []}
    for phase, step, values in (
        RunMetric.objects.filter(run=run).order_by("step").values_list("phase", "step", "values")
    ):
        series.setdefault(phase, []).append({"step": step, **values})
    return series


def run_payload(*, run: TrainingRun, with_series: bool = False) -> dict:
    payload = {
        "id": run.pk,
        "name": str(run),
        "kind": run.kind,
        "state": run.state,
        "step": run.step,
        "total_steps": run.total_steps,
        "progress": round(run.progress, 4),
        "eta_seconds": run.eta_seconds,
        "attempts": run.attempts,
        "max_attempts": run.max_attempts,
        "cancel_requested": run.cancel_requested,
        "resumed_from_step": run.resumed_from_step,
        "forced": run.forced,
        "promote_when_done": run.promote_when_done,
        "config": run.config,
        "snapshot": {
            "id": run.snapshot_id,
            "sha256": run.snapshot.sha256,
            "filters": run.snapshot.filters,
            "judgements": run.snapshot.judgement_count,
            "examples": run.snapshot.example_count,
        },
        "base_version": run.base_version.name if run.base_version_id else None,
        "worker_id": run.worker_id,
        "heartbeat_at": run.heartbeat_at,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
        "checkpoint_path": run.checkpoint_path,
        "versions": [{"id": v.pk, "name": v.name} for v in run.versions.all()],
    }
    if with_series:
        payload["series"] = run_metric_series(run=run)
        payload["log_tail"] = run.log_tail
    return payload


def version_payload(*, version: ModelVersion) -> dict:
    return {
        "id": version.pk,
        "name": version.name,
        "kind": version.kind,
        "status": version.status,
        "base_model": version.base_model,
        "parent": version.parent.name if version.parent_id else None,
        "run": version.run_id,
        "checkpoint_path": version.checkpoint_path,
        "endpoint_url": version.endpoint_url,
        "endpoint_model": version.endpoint_model,
        "own_api_key": bool(version.api_key_env),  # the variable's name is write-only
        "lineage": version.lineage,
        "metrics": version.metrics,
        "created_at": version.created_at,
    }


def generation_payload(*, job: GenerationJob) -> dict:
    return {
        "id": job.pk,
        "model_version": job.model_version.name,
        "opponent": job.opponent.name if job.opponent_id else "imported responses",
        "k": job.k,
        "params": job.params,
        "state": job.state,
        "prompts_done": job.prompts_done,
        "prompts_total": job.prompts_total,
        "responses_created": job.responses_created,
        "comparisons_created": job.comparisons_created,
        "error": job.error,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def version_lineage(*, version: ModelVersion) -> list[ModelVersion]:
    """The version, its parent, its parent's parent... (oldest last)."""
    chain, seen = [], set()
    while version is not None and version.pk not in seen:
        chain.append(version)
        seen.add(version.pk)
        version = version.parent
    return chain


def _player(slot: str) -> Coalesce:
    """The player of the response in ``slot``: its model version's name, or ``imported:<source>``
    for an imported response."""
    source = Coalesce(NullIf(f"{slot}__response__source_name", Value("")), Value("unknown"))
    return Coalesce(
        NullIf(f"{slot}__response__model_version_name", Value("")), Concat(Value("imported:"), source)
    )


def _slot(position: int) -> FilteredRelation:
    return FilteredRelation("comparison__slots", condition=Q(comparison__slots__position=position))


def arena_battles(*, project: Project) -> list[Battle]:
    """The votes on two-response comparisons whose sides come from different players, counted by
    (player a, player b, outcome) in the database: one row per cell, however many votes."""
    cells = (
        Judgement.objects.filter(comparison__project=project)
        .annotate(first=_slot(0), second=_slot(1), third=_slot(2))
        .filter(first__isnull=False, second__isnull=False, third__isnull=True)
        .annotate(side_a=_player("first"), side_b=_player("second"))
        .exclude(side_a=F("side_b"))
        .order_by()
        .values_list("side_a", "side_b", "choice")
        .annotate(n=Count("id"))
    )
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for side_a, side_b, choice, n in cells:
        counts[side_a, side_b, OUTCOME[choice]] += n  # "both bad" and "tie" are one outcome
    return [Battle(a, b, outcome, count=n) for (a, b, outcome), n in sorted(counts.items())]


def leaderboard_cache_key(*, project: Project, rounds: int = 200) -> str:
    """The votes a board was fitted on: their count and the newest id, so a new vote (or a vote
    deleted and another cast) names a new key and a page view after it refits. The project's
    creation time is in the key too: a database rebuilt from scratch reuses ids, never that."""
    seen = Judgement.objects.filter(comparison__project=project).aggregate(n=Count("id"), last=Max("id"))
    born = project.created_at.timestamp()
    return f"leaderboard:{project.pk}:{born}:{seen['n']}:{seen['last'] or 0}:{rounds}"


def project_leaderboard(*, project: Project, rounds: int = 200) -> Leaderboard:
    """The arena board, fitted once per set of votes and then served from the cache."""
    key = leaderboard_cache_key(project=project, rounds=rounds)
    board = cache.get(key)
    if board is None:
        board = leaderboard(arena_battles(project=project), rounds=rounds, seed=project.pk)
        cache.set(key, board, timeout=None)
    return board

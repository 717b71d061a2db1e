"""The model registry: register versions (from runs, base models or HTTP endpoints) and promote
them. Promoting a policy to *serving* sends it back into the annotation queue (a generation job
on held-back prompts against the previous serving version); promoting a reward model to *active
scorer* re-orders the pending queue in the project's queue order (``training.services.active_learning``)."""

from django.db import IntegrityError, transaction

from annotation.models import Project
from annotation.services.errors import Conflict, ServiceError, ValidationFailed
from training.endpoint_guard import endpoint_url_check
from training.endpoint_keys import api_key_env_check
from training.models import ModelKind, ModelVersion, RunKind, TrainingRun, VersionStatus
from training.services.active_learning import score_comparisons
from training.services.generation import generation_job_create

RUN_KIND_TO_MODEL_KIND = {
    RunKind.REWARD_MODEL: ModelKind.REWARD,
    RunKind.DPO: ModelKind.POLICY,
    # Contrastive objectives train a scorer of responses (similarity / sequence likelihood).
    RunKind.CONTRASTIVE: ModelKind.REWARD,
    # Online RL tunes the policy against a reward model.
    RunKind.RLOO: ModelKind.POLICY,
    RunKind.PPO: ModelKind.POLICY,
    RunKind.SOFT_Q: ModelKind.POLICY,
}


def version_weights(version: ModelVersion) -> str:
    """What loads a version's weights: its checkpoint, or the base model it was registered as."""
    return version.checkpoint_path or version.base_model


def active_scorer_weights(*, project: Project) -> str:
    """The weights of the project's active scorer, the reward an online RL run optimises.
    ValidationFailed when the project has none (or it has nothing to load)."""
    scorer = ModelVersion.objects.filter(project=project, status=VersionStatus.ACTIVE_SCORER).first()
    if scorer is None or not version_weights(scorer):
        raise ValidationFailed(
            "Online RL trains against the project's active scorer, and this project has none: "
            "train a reward model and promote it to active scorer first.",
            field="kind",
        )
    return version_weights(scorer)


def run_lineage(run: TrainingRun) -> dict:
    """Where a run's weights came from, recorded with its checkpoints and its version."""
    return {
        "project": run.project.slug,
        "run_id": run.pk,
        "kind": run.kind,
        "snapshot_id": run.snapshot_id,
        "snapshot_sha256": run.snapshot.sha256,
        "base_version": run.base_version.name if run.base_version else None,
        "base_model": run.config.get("model"),
    }


def version_register_from_run(*, run: TrainingRun, checkpoint_dir: str, metrics: dict) -> ModelVersion:
    """The run's final checkpoint as a version (idempotent: a second call returns the same one)."""
    existing = ModelVersion.objects.filter(run=run, checkpoint_path=checkpoint_dir).first()
    if existing:
        return existing
    name = run.name or f"{run.kind.replace('_', '-')}-run-{run.pk}"
    if ModelVersion.objects.filter(project=run.project, name=name).exists():
        name = f"{name}-run-{run.pk}"
    return ModelVersion.objects.create(
        project=run.project,
        name=name[:200],
        kind=RUN_KIND_TO_MODEL_KIND[run.kind],
        base_model=str(run.config.get("model", ""))[:300],
        parent=run.base_version,
        run=run,
        checkpoint_path=checkpoint_dir,
        lineage={**run_lineage(run), "config": run.config, "steps": run.step},
        metrics=metrics,
    )


def version_promote_for_run(*, version: ModelVersion, created_by=None) -> str:
    """Promote a run's new version to what its kind is promoted to (a policy to serving, a reward
    model to active scorer); returns a line for the run's log. A refused promotion is reported in
    that line, not raised: the run itself succeeded."""
    status = VersionStatus.SERVING if version.kind == ModelKind.POLICY else VersionStatus.ACTIVE_SCORER
    label = status.label.lower()
    try:
        version_promote(version=version, status=status, created_by=created_by)  # a savepoint of its own
    except ServiceError as error:
        return f"Not promoted to {label}: {error.message}"
    return f"Promoted {version.name} to {label}."


def version_for_base_model(*, project: Project, base_model: str) -> ModelVersion | None:
    """The project's registered policy for an untrained base model, registered on first use
    (named ``base:<model>``). None for a model given as a checkpoint of another version."""
    if not base_model:
        return None
    existing = ModelVersion.objects.filter(
        project=project, kind=ModelKind.POLICY, base_model=base_model, run__isnull=True, checkpoint_path=""
    ).first()
    if existing:
        return existing
    version, _ = ModelVersion.objects.get_or_create(
        project=project,
        name=f"base:{base_model}"[:200],
        defaults={"kind": ModelKind.POLICY, "base_model": base_model, "lineage": {"registered": "base"}},
    )
    return version


@transaction.atomic
def version_create(
    *,
    project: Project,
    name: str,
    kind: str = ModelKind.POLICY,
    base_model: str = "",
    checkpoint_path: str = "",
    endpoint_url: str = "",
    endpoint_model: str = "",
    api_key_env: str = "",
    parent: ModelVersion | None = None,
) -> ModelVersion:
    """Register a version that was not trained here: a base model (short name, hub id or path),
    a checkpoint directory, or an OpenAI-compatible endpoint (policies only), whose API key is
    the environment variable ``api_key_env`` names (``training.endpoint_keys``) or the global one."""
    name = name.strip()
    if not name:
        raise ValidationFailed("A version needs a name.", field="name")
    if kind not in ModelKind.values:
        raise ValidationFailed(f"Unknown kind {kind!r}.", field="kind")
    sources = [bool(base_model or checkpoint_path), bool(endpoint_url)]
    if sum(sources) != 1:
        raise ValidationFailed(
            "Give either a base model / checkpoint path or an endpoint URL (exactly one).",
            field="endpoint_url",
        )
    if endpoint_url:
        if kind != ModelKind.POLICY:
            raise ValidationFailed("Only policies can generate from an endpoint.", field="kind")
        if not endpoint_url.startswith(("http://", "https://")):
            raise ValidationFailed(
                "The endpoint URL must start with http:// or https://.", field="endpoint_url"
            )
        if not endpoint_model:
            raise ValidationFailed("Name the model the endpoint serves.", field="endpoint_model")
        endpoint_url_check(endpoint_url)  # checked again at every connection (training.endpoint)
    if api_key_env:
        if not endpoint_url:
            raise ValidationFailed("Only an endpoint takes an API key variable.", field="api_key_env")
        api_key_env_check(api_key_env)  # and again at every request (training.endpoint_keys)
    if parent is not None and parent.project_id != project.pk:
        raise ValidationFailed("The parent belongs to another project.", field="parent")
    try:
        with transaction.atomic():
            return ModelVersion.objects.create(
                project=project,
                name=name[:200],
                kind=kind,
                base_model=base_model or checkpoint_path,
                checkpoint_path=checkpoint_path,
                endpoint_url=endpoint_url,
                endpoint_model=endpoint_model,
                api_key_env=api_key_env,
                parent=parent,
                lineage={"registered": "endpoint" if endpoint_url else "base"},
            )
    except IntegrityError:
        raise Conflict(f"A version named {name!r} already exists in this project.", field="name") from None


@transaction.atomic
def version_promote(*, version: ModelVersion, status: str, created_by=None) -> ModelVersion:
    """Make ``version`` the project's serving policy or active scorer, demoting the previous one.

    Serving: a generation job pairs the new policy's responses on held-back prompts with the
    previous serving version's (or, without one, the parent's, or the imported responses) and
    enqueues it after commit. Active scorer: the pending comparisons are re-scored.
    """
    if status not in (VersionStatus.SERVING, VersionStatus.ACTIVE_SCORER):
        raise ValidationFailed("Promote to 'serving' or 'active_scorer'.", field="status")
    if status == VersionStatus.SERVING and version.kind != ModelKind.POLICY:
        raise ValidationFailed("Only a policy can serve; this is a reward model.", field="status")
    if status == VersionStatus.ACTIVE_SCORER and version.kind != ModelKind.REWARD:
        raise ValidationFailed("Only a reward model can be the active scorer.", field="status")
    if status == VersionStatus.ACTIVE_SCORER and not version.checkpoint_path and not version.base_model:
        raise ValidationFailed("This reward model has no checkpoint to score with.", field="status")
    # One promotion at a time per project: lock the project row first (NO KEY UPDATE, so inserts
    # that reference the project, votes included, do not wait). Locking only the versions that hold
    # the status let a second promotion miss the first's new holder and hit the unique constraint.
    # The versions themselves too, without blocking inserts whose parent they are.
    Project.objects.select_for_update(no_key=True).filter(pk=version.project_id).first()
    current = list(
        ModelVersion.objects.select_for_update(no_key=True).filter(
            project_id=version.project_id, status=status
        )
    )
    previous = next((v for v in current if v.pk != version.pk), None)
    if previous:
        ModelVersion.objects.filter(pk=previous.pk).update(status=VersionStatus.REGISTERED)
    ModelVersion.objects.filter(pk=version.pk).update(status=status)
    version.refresh_from_db()
    if status == VersionStatus.SERVING and not any(v.pk == version.pk for v in current):
        opponent = previous or version.parent
        generation_job_create(
            project=version.project, model_version=version, opponent=opponent, created_by=created_by
        )
    elif status == VersionStatus.ACTIVE_SCORER:
        score_comparisons.delay_on_commit(version.project_id)
    return version

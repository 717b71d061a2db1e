"""The closed loop's schema: model versions (the registry), training runs, the data snapshots they
train on, generation jobs that bring model output back into the annotation queue, and the
per-project loop settings.

Runs and generation jobs are leased jobs (``alignweb.jobs``): a run moves ``queued -> running ->
succeeded | failed | cancelled``; while running, a worker owns it (``worker_id``, ``attempts``) and
proves it is alive through ``heartbeat_at``; a run whose heartbeat is older than
``ALIGNWEB_RUN_STALE_SECONDS`` is re-queued by the reaper (``training.tasks.reap_stale_runs``) and
resumes from its last checkpoint on another worker.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from alignweb.jobs import JobState, LeasedJob


class ModelKind(models.TextChoices):
    POLICY = "policy", "Policy (generates responses)"
    REWARD = "reward", "Reward model (scores responses)"


class VersionStatus(models.TextChoices):
    REGISTERED = "registered", "Registered"
    SERVING = "serving", "Serving (generates into the queue)"
    ACTIVE_SCORER = "active_scorer", "Active scorer (orders the queue)"
    RETIRED = "retired", "Retired"


class ModelVersion(models.Model):
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="model_versions")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=ModelKind.choices, default=ModelKind.POLICY)
    base_model = models.CharField(max_length=300, blank=True, help_text="Short name, hub id or path.")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.RESTRICT, related_name="children"
    )
    run = models.ForeignKey(
        "TrainingRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="versions",
        help_text="The run that produced this checkpoint.",
    )
    status = models.CharField(max_length=15, choices=VersionStatus.choices, default=VersionStatus.REGISTERED)
    checkpoint_path = models.CharField(max_length=500, blank=True)
    endpoint_url = models.URLField(
        blank=True, help_text="An OpenAI-compatible server to generate from instead of a checkpoint."
    )
    endpoint_model = models.CharField(
        max_length=200, blank=True, help_text="The model name the endpoint expects in requests."
    )
    api_key_env = models.CharField(
        max_length=200,
        blank=True,
        help_text="The workers' environment variable holding the endpoint's API key (never the key "
        "itself; training/endpoint_keys.py says which names are allowed). Empty: the global key.",
    )
    lineage = models.JSONField(
        default=dict, blank=True, help_text="Base model, run, snapshot hash and config it came from."
    )
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="model_version_unique_name"),
            # One serving policy and one active scorer per project: promotion demotes the old one.
            models.UniqueConstraint(
                fields=["project", "status"],
                condition=Q(status__in=["serving", "active_scorer"]),
                name="one_serving_and_one_scorer_per_project",
            ),
            models.CheckConstraint(
                condition=~Q(status="serving") | Q(kind="policy"), name="only_policies_serve"
            ),
            models.CheckConstraint(
                condition=~Q(status="active_scorer") | Q(kind="reward"), name="only_reward_models_score"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RunKind(models.TextChoices):
    REWARD_MODEL = "reward_model", "Reward model"
    DPO = "dpo", "DPO"
    CONTRASTIVE = "contrastive", "Contrastive"
    # Online RL of a policy against the project's active scorer (training.ml.rl).
    RLOO = "rloo", "RLOO (online RL)"
    PPO = "ppo", "PPO (online RL)"
    SOFT_Q = "soft_q", "Soft Q-learning (online RL, experimental)"


RL_RUN_KINDS = (RunKind.RLOO, RunKind.PPO, RunKind.SOFT_Q)  # as training.ml.config.RL_KINDS


class RunState(models.TextChoices):
    # The lifecycle's four states (alignweb.jobs.JobState), and one only a run has.
    QUEUED = JobState.QUEUED.value, JobState.QUEUED.label
    RUNNING = JobState.RUNNING.value, JobState.RUNNING.label
    SUCCEEDED = JobState.SUCCEEDED.value, JobState.SUCCEEDED.label
    FAILED = JobState.FAILED.value, JobState.FAILED.label
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_RUN_STATES = (RunState.QUEUED, RunState.RUNNING)
FINAL_RUN_STATES = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)


class DataSnapshot(models.Model):
    """Exactly which votes a run trained on, and the filters that chose them.

    ``sha256`` covers the filters and every (judgement id, comparison id, choice, strength) used,
    so two runs with the same hash trained on the same labels.
    """

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="snapshots")
    filters = models.JSONField(default=dict)
    judgement_ids = models.JSONField(default=list)
    prior_comparison_ids = models.JSONField(
        default=list, help_text="Comparisons whose imported label was used (when asked for)."
    )
    judgement_count = models.PositiveIntegerField(default=0)
    example_count = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Snapshot {self.pk} ({self.sha256[:12]})"


class TrainingRun(LeasedJob):
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="training_runs")
    kind = models.CharField(max_length=20, choices=RunKind.choices)
    name = models.CharField(max_length=200, blank=True)
    config = models.JSONField(default=dict, help_text="Validated against training.ml.config.")
    # RESTRICT: not deleted on their own while a run refers to them, but with their project.
    snapshot = models.ForeignKey(DataSnapshot, on_delete=models.RESTRICT, related_name="runs")
    base_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.RESTRICT,
        related_name="derived_runs",
        help_text="The registered version training starts from (the new version's parent).",
    )
    forced = models.BooleanField(default=False, help_text="Started next to another active run.")
    promote_when_done = models.BooleanField(
        default=False,
        help_text="On success, promote its version: a policy to serving, a reward model to active scorer.",
    )
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.QUEUED)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    resumed_from_step = models.PositiveIntegerField(
        null=True, blank=True, help_text="The checkpoint step the last attempt resumed from."
    )
    log_tail = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)

    output_dir = models.CharField(max_length=500, blank=True)
    checkpoint_path = models.CharField(max_length=500, blank=True, help_text="The newest checkpoint.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind"],
                condition=Q(state__in=["queued", "running"], forced=False),
                name="one_active_run_per_project_and_kind",
            )
        ]
        indexes = [models.Index(fields=["state", "heartbeat_at"], name="run_liveness")]

    def __str__(self) -> str:
        return self.name or f"{self.get_kind_display()} run {self.pk}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_RUN_STATES

    @property
    def progress(self) -> float:
        if not self.total_steps:
            return 1.0 if self.state == RunState.SUCCEEDED else 0.0
        return min(1.0, self.step / self.total_steps)


class RunMetric(models.Model):
    """One point of a run's metric series. (run, phase, step) is unique, so a step replayed after a
    resume overwrites its point instead of doubling it."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metric_points")
    phase = models.CharField(max_length=10, help_text="train or eval")
    step = models.PositiveIntegerField()
    values = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["phase", "step"]
        constraints = [
            models.UniqueConstraint(fields=["run", "phase", "step"], name="one_metric_point_per_step")
        ]


class GenerationJob(LeasedJob):
    """K responses per prompt from ``model_version``, each paired against ``opponent``'s responses
    (or the imported ones when there is no opponent) in new comparisons."""

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="generation_jobs"
    )
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="generation_jobs")
    opponent = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    held_back_only = models.BooleanField(default=True)
    prompt_limit = models.PositiveIntegerField(null=True, blank=True)
    k = models.PositiveSmallIntegerField(default=1, help_text="Responses per prompt.")
    params = models.JSONField(default=dict, help_text="max_new_tokens, temperature, top_p, seed.")
    prompts_total = models.PositiveIntegerField(default=0)
    prompts_done = models.PositiveIntegerField(default=0)
    responses_created = models.PositiveIntegerField(default=0)
    comparisons_created = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Generation {self.pk} from {self.model_version}"


class QueueOrder(models.TextChoices):
    UNCERTAINTY = "uncertainty", "Most uncertain first (active scorer)"
    INFORMATIVE = "informative", "Most informative first (BALD, active scorer)"
    RANDOM = "random", "Random"


class LoopSettings(models.Model):
    """Per-project knobs of the closed loop (kept here so the annotation schema stays the loop's
    consumer, not its owner)."""

    project = models.OneToOneField(
        "annotation.Project", on_delete=models.CASCADE, related_name="loop_settings"
    )
    # BALD by default: on the active-learning bench it reached random order's final accuracy with
    # 0.69 of the labels, where "most uncertain first" needed 0.91 (a thin lead; bench/README.md).
    # Projects that already have a settings row keep the order stored in it.
    queue_order = models.CharField(max_length=12, choices=QueueOrder.choices, default=QueueOrder.INFORMATIVE)
    responses_per_prompt = models.PositiveSmallIntegerField(default=1)
    generation_params = models.JSONField(
        default=dict, blank=True, help_text="Defaults for generation: max_new_tokens, temperature, top_p."
    )

    def __str__(self) -> str:
        return f"Loop settings of {self.project}"


class GeneratedResponse(models.Model):
    """The model version that generated a response. Annotation stores the version's name on the
    response (what it shows and exports); this row holds the relation itself, so a version that
    wrote responses cannot be deleted on its own (deleting the project takes both)."""

    response = models.OneToOneField(
        "annotation.Response", primary_key=True, on_delete=models.CASCADE, related_name="generation"
    )
    model_version = models.ForeignKey(ModelVersion, on_delete=models.RESTRICT, related_name="responses")

    def __str__(self) -> str:
        return f"{self.model_version.name}: response {self.response_id}"


class EvaluationState(models.TextChoices):
    # The lifecycle's four states (alignweb.jobs.JobState), and one only an evaluation has.
    QUEUED = JobState.QUEUED.value, JobState.QUEUED.label
    RUNNING = JobState.RUNNING.value, JobState.RUNNING.label
    SUCCEEDED = JobState.SUCCEEDED.value, JobState.SUCCEEDED.label
    FAILED = JobState.FAILED.value, JobState.FAILED.label
    SKIPPED = "skipped", "Skipped"


class EvaluationOpponent(models.TextChoices):
    BASE = "base", "Base (the version it was trained from)"
    PREVIOUS_SERVING = "previous_serving", "Previous serving version"


class VersionEvaluation(LeasedJob):
    """A policy version scored against an opponent on the project's held-back prompts by a reward
    model (the judge): win rate with its bootstrap 95% interval, the per-token KL to the base and
    both mean response lengths (``training.ml.version_eval``). Queued when a policy run succeeds
    (``training.services.evaluations``); a leased job like runs and generation jobs. Skipped, with
    the reason in ``error``, when there is nothing to judge with or against."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="evaluations")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    opponent = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    opponent_role = models.CharField(max_length=20, choices=EvaluationOpponent.choices)
    reference = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The version the KL is measured to (the base).",
    )
    judge = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    judge_label = models.CharField(
        max_length=200, blank=True, help_text="Which judge produced the scores (the reward model's name)."
    )
    state = models.CharField(max_length=10, choices=EvaluationState.choices, default=EvaluationState.QUEUED)
    settings = models.JSONField(default=dict, blank=True, help_text="Generation settings and seed.")
    n_prompts = models.PositiveIntegerField(default=0)
    win_rate = models.FloatField(null=True, blank=True, help_text="Ties count half.")
    ci_low = models.FloatField(null=True, blank=True, help_text="Bootstrap 95% interval of the win rate.")
    ci_high = models.FloatField(null=True, blank=True)
    wins = models.PositiveIntegerField(null=True, blank=True)
    ties = models.PositiveIntegerField(null=True, blank=True)
    losses = models.PositiveIntegerField(null=True, blank=True)
    mean_kl = models.FloatField(null=True, blank=True, help_text="KL(tuned || base) per generated token.")
    mean_length_tuned = models.FloatField(null=True, blank=True, help_text="Generated tokens per response.")
    mean_length_opponent = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "opponent"], name="one_evaluation_per_opponent")
        ]

    def __str__(self) -> str:
        return f"{self.version} vs {self.opponent} ({self.get_opponent_role_display()})"

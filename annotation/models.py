"""Projects, prompts, responses, comparisons, judgements and the assignments that lease them.

Vocabulary:
- A *comparison* puts 2+ responses to one prompt side by side. Its responses have fixed canonical
  positions (0 = "A", 1 = "B", ...); what the annotator saw on the left is recorded separately,
  so randomised sides never change what "A" means in the data.
- A *judgement* is one annotator's verdict on one comparison.
- An *assignment* is a lease of one comparison to one annotator; it becomes the judgement's
  receipt once submitted.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from alignweb.jobs import LeasedJob


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    RESEARCHER = "researcher", "Researcher"
    ADMIN = "admin", "Admin"


class RationalePolicy(models.TextChoices):
    OFF = "off", "Not asked"
    OPTIONAL = "optional", "Optional"
    REQUIRED = "required", "Required"


class Choice(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


def default_strength_scale() -> list[str]:
    return ["slight", "clear", "strong"]


class Project(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    allow_tie = models.BooleanField(default=True)
    allow_both_bad = models.BooleanField(default=True)
    strength_scale = models.JSONField(
        default=default_strength_scale,
        blank=True,
        help_text="Labels from weakest to strongest; empty means strength is not asked.",
    )
    rationale = models.CharField(
        max_length=10, choices=RationalePolicy.choices, default=RationalePolicy.OPTIONAL
    )
    overlap = models.PositiveSmallIntegerField(
        default=1, help_text="Judgements wanted per comparison, from distinct annotators."
    )
    lease_seconds = models.PositiveIntegerField(
        default=600, help_text="How long an annotator holds an item before it goes back to the pool."
    )
    gold_rate = models.FloatField(
        default=0.0, help_text="Share of served items drawn from gold comparisons (0 to 1)."
    )
    gold_accuracy_threshold = models.FloatField(
        default=0.7, help_text="Annotators below this accuracy on gold items are flagged."
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="annotation_projects"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class Prompt(models.Model):
    """A conversation so far: ``messages`` is a list of ``{"role", "content"}`` turns.

    A plain-text prompt is one user turn. The last turn is the one the responses answer.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    messages = models.JSONField()
    content_hash = models.CharField(max_length=64, help_text="sha256 of the canonical messages JSON.")
    source = models.CharField(max_length=200, blank=True)
    held_back = models.BooleanField(
        default=False, help_text="Kept out of training data so tuned models can be judged on it."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="prompt_unique_in_project")
        ]

    def __str__(self) -> str:
        last = self.messages[-1]["content"] if self.messages else ""
        return last[:80]


class Response(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    content_hash = models.CharField(max_length=64)
    source_name = models.CharField(
        max_length=200, blank=True, help_text="Imported source (file, dataset) when not generated here."
    )
    # The model version that generated it, by name (names are unique in a project), blank for an
    # imported text. Training writes it with the response and keeps the relation to the version
    # itself (training.GeneratedResponse), so annotation reads provenance without training.
    model_version_name = models.CharField(max_length=200, blank=True)
    generation_params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # An imported text is stored once per prompt, a generated one once per model version.
            models.UniqueConstraint(
                fields=["prompt", "content_hash", "model_version_name"],
                name="response_unique_per_prompt_and_version",
            ),
        ]

    def __str__(self) -> str:
        return self.text[:80]


class Comparison(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="comparisons")
    responses = models.ManyToManyField(Response, through="ComparisonResponse", related_name="comparisons")
    key = models.CharField(max_length=64, help_text="sha256 of the prompt and ordered response hashes.")
    open_slots = models.IntegerField(
        default=0,
        help_text="overlap - judgements - live leases; the queue serves comparisons with slots > 0.",
    )
    judgement_count = models.PositiveIntegerField(default=0)
    priority = models.FloatField(
        default=0.0, help_text="Higher is served first (e.g. reward-model uncertainty)."
    )
    prior_choice = models.CharField(
        max_length=10, choices=Choice.choices, blank=True, help_text="A label that came with an import."
    )
    prior_source = models.CharField(max_length=200, blank=True)
    is_gold = models.BooleanField(default=False)
    gold_choice = models.CharField(max_length=10, choices=Choice.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="comparison_unique_in_project"),
            models.CheckConstraint(condition=Q(is_gold=False) | ~Q(gold_choice=""), name="gold_has_answer"),
        ]
        indexes = [
            # "Next comparison" walks this index: open items of one project, best first.
            models.Index(
                fields=["project", "is_gold", "-priority", "id"],
                name="comparison_queue",
                condition=Q(open_slots__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"Comparison {self.pk} of prompt {self.prompt_id}"


class ComparisonResponse(models.Model):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="slots")
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(help_text="0 is A, 1 is B, and so on.")

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "position"], name="one_response_per_position"),
            models.UniqueConstraint(fields=["comparison", "response"], name="response_once_per_comparison"),
        ]


class AssignmentStatus(models.TextChoices):
    LEASED = "leased", "Leased"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    """One annotator's lease on one comparison, and the order its responses were shown in."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(
        max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED
    )
    display_order = models.JSONField(help_text="Canonical positions in the order shown, left first.")
    leased_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comparison", "annotator"], name="one_assignment_per_annotator"),
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="live_lease_expiry", condition=Q(status="leased")),
            models.Index(fields=["annotator", "status"], name="assignment_by_annotator"),
        ]


class Judgement(models.Model):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="judgements")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgements"
    )
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="judgement"
    )
    choice = models.CharField(max_length=10, choices=Choice.choices, help_text="In canonical positions.")
    strength = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Index into the project's strength scale (0 = weakest)."
    )
    rationale = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    display_order = models.JSONField(help_text="Canonical positions in the order shown, left first.")
    left_response = models.ForeignKey(Response, on_delete=models.RESTRICT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comparison", "annotator"], name="one_judgement_per_annotator"),
        ]
        indexes = [models.Index(fields=["annotator", "created_at"], name="judgement_by_annotator")]


class JudgementTally(models.Model):
    """How many judgements one annotator has made in one project, kept by the database.

    Triggers on ``annotation_judgement`` (``annotation/sql/judgement_tally.sql``) keep it: an insert
    adds one, a delete takes one off (an update only, never an insert, so deleting a project or a
    user in whatever order Django's collector picks cannot bring back a row it has just deleted),
    and moving a judgement to another annotator or comparison, or a comparison to another project,
    moves its count. "Next" reads the annotator's "done" from here in one index probe instead of
    counting their judgements on every item. A row may stay at 0 after its judgements are deleted;
    no row reads as 0. Never written from Python.
    """

    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="judgement_tallies",
        db_index=False,  # the unique (annotator, project) index leads with it
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judgement_tallies")
    judgements = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "project"], name="one_tally_per_annotator_and_project"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.annotator} in {self.project}: {self.judgements}"


class ImportBatch(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    format = models.CharField(max_length=20)
    filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    rows = models.PositiveIntegerField(default=0)
    created = models.JSONField(default=dict, help_text="Counts of new prompts, responses, comparisons.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)


class Export(LeasedJob):
    """A file of a project's votes, written by a worker (``annotation.services.export_jobs``) or
    by the ``export`` command; its lifecycle fields come from ``alignweb.jobs.LeasedJob``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=20)
    options = models.JSONField(default=dict, help_text="Filters and aggregation, as requested.")
    path = models.CharField(max_length=500, blank=True)
    rows = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)


class ApiToken(models.Model):
    """An API token, stored as the digest of its key (``annotation.token_keys``), never the key.

    A user may hold several (one per script or machine); each expires ``ALIGNWEB_TOKEN_TTL_DAYS``
    after it was issued, and rotating one replaces it (``annotation.services.tokens``). A trigger
    deletes a user's tokens when their password changes or their account is deactivated
    (``annotation/sql/token_revoke.sql``), whichever path writes the user's row. The API checks a
    token in ``annotation.token_bearer``, the vote path in ``annotation/sql/principal.sql``.
    """

    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False, help_text="The key's first characters.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

"""Model versions (the registry). Training runs and snapshots are added by the closed-loop work."""

from django.db import models


class ModelKind(models.TextChoices):
    POLICY = "policy", "Policy (generates responses)"
    REWARD = "reward", "Reward model (scores responses)"


class ModelVersion(models.Model):
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="model_versions")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=ModelKind.choices, default=ModelKind.POLICY)
    base_model = models.CharField(max_length=300, blank=True, help_text="Short name, hub id or path.")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    checkpoint_path = models.CharField(max_length=500, blank=True)
    endpoint_url = models.URLField(
        blank=True, help_text="An OpenAI-compatible server to generate from instead of a checkpoint."
    )
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="model_version_unique_name")]

    def __str__(self) -> str:
        return self.name

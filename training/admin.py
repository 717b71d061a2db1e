from django.contrib import admin

from training import models


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "kind", "status", "base_model", "parent", "run", "created_at"]
    list_filter = ["kind", "status", "project"]
    raw_id_fields = ["parent", "run"]


class RunMetricInline(admin.TabularInline):
    model = models.RunMetric
    extra = 0
    readonly_fields = ["phase", "step", "values", "created_at"]
    can_delete = False


@admin.register(models.TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "kind",
        "state",
        "step",
        "total_steps",
        "attempts",
        "worker_id",
        "heartbeat_at",
    ]
    list_filter = ["kind", "state", "project"]
    raw_id_fields = ["snapshot", "base_version", "created_by"]
    readonly_fields = ["heartbeat_at", "worker_id", "attempts", "log_tail", "error"]
    inlines = [RunMetricInline]


@admin.register(models.DataSnapshot)
class DataSnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "judgement_count", "example_count", "sha256", "created_at"]
    list_filter = ["project"]


@admin.register(models.GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "model_version", "opponent", "state", "prompts_done", "prompts_total"]
    list_filter = ["state", "project"]
    raw_id_fields = ["model_version", "opponent", "created_by"]


@admin.register(models.LoopSettings)
class LoopSettingsAdmin(admin.ModelAdmin):
    list_display = ["project", "queue_order", "responses_per_prompt"]


@admin.register(models.VersionEvaluation)
class VersionEvaluationAdmin(admin.ModelAdmin):
    list_display = ["id", "version", "opponent", "opponent_role", "judge_label", "state", "win_rate"]
    list_filter = ["state", "opponent_role", "project"]
    raw_id_fields = ["version", "opponent", "reference", "judge"]
    readonly_fields = ["heartbeat_at", "worker_id", "attempts", "error"]

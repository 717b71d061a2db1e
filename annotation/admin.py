from django.contrib import admin

from annotation import models


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 1
    autocomplete_fields = ["user"]


class JudgementTallyInline(admin.TabularInline):
    """Judgements per annotator, as the database counts them (read-only: triggers keep it).

    An inline rather than a page of its own: a registered admin that refused deletes would make
    the admin refuse to delete a project or a user whose tally rows go with it.
    """

    model = models.JudgementTally
    fields = readonly_fields = ["annotator", "judgements"]
    ordering = ["-judgements", "annotator__username"]
    verbose_name_plural = "judgements per annotator"
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "overlap", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline, JudgementTallyInline]


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role"]
    list_filter = ["role", "project"]


@admin.register(models.Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "__str__", "source", "held_back"]
    list_filter = ["project", "held_back"]


@admin.register(models.Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "__str__", "source_name", "model_version_name"]
    raw_id_fields = ["prompt"]


class ComparisonResponseInline(admin.TabularInline):
    model = models.ComparisonResponse
    raw_id_fields = ["response"]
    extra = 0


@admin.register(models.Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "judgement_count", "open_slots", "priority", "is_gold", "prior_choice"]
    list_filter = ["project", "is_gold"]
    raw_id_fields = ["prompt"]
    inlines = [ComparisonResponseInline]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "annotator", "status", "expires_at"]
    list_filter = ["status"]
    raw_id_fields = ["comparison"]


@admin.register(models.Judgement)
class JudgementAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "annotator", "choice", "strength", "created_at"]
    list_filter = ["choice"]
    raw_id_fields = ["comparison", "assignment", "left_response"]


@admin.register(models.ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "format", "filename", "rows", "created_at"]


@admin.register(models.Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "format", "state", "attempts", "rows", "created_at"]

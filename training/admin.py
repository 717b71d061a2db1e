from django.contrib import admin

from training import models


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "kind", "base_model", "parent", "created_at"]
    list_filter = ["kind", "project"]

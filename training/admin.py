"""Django admin: read-only views of runs, versions and scores (they change through training services)."""
from django.contrib import admin

from annotation.admin import ReadOnlyAdmin
from training.models import ModelVersion, ResponseScore, TrainingPolicy, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "project", "status", "trigger", "mode", "pairs", "created_at", "finished_at")
    list_filter = ("status", "trigger", "project")


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("project", "version", "status", "created_at", "promoted_at")
    list_filter = ("status", "project")


@admin.register(ResponseScore)
class ResponseScoreAdmin(ReadOnlyAdmin):
    list_display = ("response", "model_version", "score")


@admin.register(TrainingPolicy)
class TrainingPolicyAdmin(ReadOnlyAdmin):
    list_display = ("project", "mode", "aggregation", "nightly_at", "retrain_every_n_labels")

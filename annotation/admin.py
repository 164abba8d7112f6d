"""Django admin: browse everything, edit project settings. Labels and leases are read-only
here: they change only through the annotation services, which keep counts and leases right."""
from django.contrib import admin

from annotation.models import Assignment, ComparisonItem, Label, Project, Prompt, Response


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "label_format", "labels_per_item", "rationale_mode", "created_at")
    filter_horizontal = ("annotators",)
    search_fields = ("name",)


@admin.register(Prompt)
class PromptAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "project", "created_at")
    list_filter = ("project",)
    search_fields = ("external_id",)


@admin.register(Response)
class ResponseAdmin(ReadOnlyAdmin):
    list_display = ("id", "prompt", "model_name", "created_at")
    list_filter = ("model_name",)


@admin.register(ComparisonItem)
class ComparisonItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "project", "prompt", "label_count")
    list_filter = ("project",)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "item", "annotator", "status", "expires_at", "skip_reason")
    list_filter = ("status",)


@admin.register(Label)
class LabelAdmin(ReadOnlyAdmin):
    list_display = ("id", "item", "annotator", "is_tie", "both_bad", "strength", "seconds_spent", "created_at")
    list_filter = ("is_tie", "both_bad", "strength")

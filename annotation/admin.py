"""Django admin: browse everything, edit projects, delete labels; all writes go through the services.

A project is created and edited by ``project_create``/``project_update``, and their refusals
show up as form errors. A label is deleted by ``label_delete``, which keeps the item's
``label_count`` and slots right. Prompts, responses, items and assignments are read-only and
cannot be deleted one by one (each would strand labels or counts); a project is deleted whole.
"""
from django import forms
from django.contrib import admin
from django.db import transaction

from annotation.models import Assignment, ComparisonItem, Label, Project, Prompt, Response
from annotation.services import PROJECT_EDITABLE_FIELDS, label_delete, project_create, project_update
from config.errors import DomainError, NotFoundError


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class UndeletableAdmin(ReadOnlyAdmin):
    """Read-only, and no delete either: deleting one row here would bypass the services."""

    def has_delete_permission(self, request, obj=None):
        return False


class ProjectAdminForm(forms.ModelForm):
    """Saves through the project services; their refusals become this form's errors.

    The services replace ModelForm's model validation (``_post_clean``): they are the
    one place that decides what a valid project is, and their sentences are the ones
    the API shows. The write happens inside ``is_valid()``, which the admin runs in
    one transaction with the rest of the request.
    """

    class Meta:
        model = Project
        fields = (*PROJECT_EDITABLE_FIELDS, "annotators")

    def _post_clean(self):
        if self.errors:
            return
        settings = {name: self.cleaned_data[name] for name in PROJECT_EDITABLE_FIELDS}
        if settings["criteria"] is None:  # an emptied JSON box
            settings["criteria"] = []
        try:
            if self.instance.pk is None:
                self.instance = project_create(**settings, annotators=self.cleaned_data["annotators"])
            else:
                changed = {name: settings[name] for name in PROJECT_EDITABLE_FIELDS if name in self.changed_data}
                annotators = self.cleaned_data["annotators"] if "annotators" in self.changed_data else None
                # A fresh copy: project_update sets attributes before its last check, and a
                # refused edit must leave the page's object as it is in the database.
                self.instance = project_update(
                    project=Project.objects.get(pk=self.instance.pk), annotators=annotators, **changed
                )
        except DomainError as error:
            self._add_service_error(error)

    def _add_service_error(self, error: DomainError) -> None:
        # Field keys such as "criteria[1]" belong to the criteria box.
        named = sorted({key.split("[", 1)[0] for key in error.fields} & set(self.fields))
        for field in named or [None]:
            self.add_error(field, error.message)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm
    list_display = ("name", "label_format", "labels_per_item", "rationale_mode", "created_at")
    filter_horizontal = ("annotators",)
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        pass  # ProjectAdminForm saved it through the services while validating.

    def save_related(self, request, form, formsets, change):
        pass  # the services set the annotators too.

    def get_deleted_objects(self, objs, request):
        # Deleting a whole project takes every prompt, item, assignment and label with it,
        # so no count is left behind; the per-row refusal of those admins does not apply.
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        cascaded = {model._meta.verbose_name for model in (Prompt, Response, ComparisonItem, Assignment)}
        return deleted, model_count, perms_needed - cascaded, protected


@admin.register(Prompt)
class PromptAdmin(UndeletableAdmin):
    list_display = ("external_id", "project", "created_at")
    list_filter = ("project",)
    search_fields = ("external_id",)


@admin.register(Response)
class ResponseAdmin(UndeletableAdmin):
    list_display = ("id", "prompt", "model_name", "created_at")
    list_filter = ("model_name",)


@admin.register(ComparisonItem)
class ComparisonItemAdmin(UndeletableAdmin):
    list_display = ("id", "project", "prompt", "label_count")
    list_filter = ("project",)


@admin.register(Assignment)
class AssignmentAdmin(UndeletableAdmin):
    list_display = ("id", "item", "annotator", "status", "expires_at", "skip_reason")
    list_filter = ("status",)


@admin.register(Label)
class LabelAdmin(ReadOnlyAdmin):
    """Labels can be deleted (single and bulk), always through ``label_delete``."""

    list_display = ("id", "item", "annotator", "is_tie", "both_bad", "strength", "seconds_spent", "created_at")
    list_filter = ("is_tie", "both_bad", "strength")

    def delete_model(self, request, obj):
        label_delete(label_id=obj.id)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for label_id in queryset.order_by("id").values_list("id", flat=True):
                try:
                    label_delete(label_id=label_id)
                except NotFoundError:
                    pass  # undone by its annotator since the page was shown: already gone

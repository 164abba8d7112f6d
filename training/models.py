"""Training runs, the model versions they produce, and the scores those versions give.

A run trains on a frozen snapshot file (path + SHA-256), never on a live query, so
a model version can always be traced to the exact pairs it saw.
"""
from django.db import models
from django.db.models import Q

from annotation.models import Project, Response


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        LABEL_COUNT = "label_count", "every N new labels"
        SCHEDULE = "schedule", "nightly schedule"
        MANUAL = "manual", "manual (UI or API)"
        CLI = "cli", "command line"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    label_count = models.PositiveIntegerField(
        default=0, help_text="Labels in the project when the run was requested; the next N-labels trigger counts from here."
    )
    config = models.JSONField(default=dict, blank=True)
    snapshot_path = models.CharField(max_length=500, blank=True)
    snapshot_sha256 = models.CharField(max_length=64, blank=True)
    pairs = models.PositiveIntegerField(default=0)
    progress = models.JSONField(default=dict, blank=True, help_text="{step, total_steps, loss, eta_s} while running.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Never two runs at once for one project, whatever races the triggers have.
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=["queued", "running"]),
                name="training_run_one_active_per_project",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]), name="training_run_status_valid"
            ),
        ]


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CHAMPION = "champion"
        REJECTED = "rejected", "rejected by the promotion gate"
        RETIRED = "retired", "replaced by a newer champion"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    version = models.PositiveIntegerField()
    training_run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children")
    status = models.CharField(max_length=16, choices=Status.choices)
    checkpoint_path = models.CharField(max_length=500)
    metrics = models.JSONField(help_text="Held-out metrics of this version.")
    champion_metrics = models.JSONField(
        default=dict, blank=True, help_text="The previous champion's metrics on the same held-out pairs."
    )
    config = models.JSONField(default=dict)
    data_sha256 = models.CharField(max_length=64)
    seed = models.IntegerField()
    code_version = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="model_version_unique_per_project"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(status="champion"), name="model_version_one_champion_per_project"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["champion", "rejected", "retired"]), name="model_version_status_valid"
            ),
        ]


class ResponseScore(models.Model):
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="scores")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="scores")
    score = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "model_version"], name="response_score_unique_per_version"),
        ]

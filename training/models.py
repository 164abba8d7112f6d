"""Training runs, the model versions they produce, and the scores those versions give.

A run trains on a frozen snapshot file (path + SHA-256), never on a live query, so
a model version can always be traced to the exact pairs it saw.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Project, Response


class TrainingPolicy(models.Model):
    """How a project's reward model is retrained. Admins edit it; absent means the defaults."""

    class Mode(models.TextChoices):
        FULL = "full", "full retrain from the backbone"
        INCREMENTAL = "incremental", "warm-start from the champion on new labels plus a replay sample"

    class Aggregation(models.TextChoices):
        PER_LABEL = "per_label", "one training pair per label"
        MAJORITY = "majority", "one pair per item by majority vote"
        WEIGHTED = "weighted", "one pair per item by a vote weighted by annotator accuracy"

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="training_policy")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.FULL)
    aggregation = models.CharField(max_length=16, choices=Aggregation.choices, default=Aggregation.PER_LABEL)
    train_on_ties = models.BooleanField(default=False, help_text="Train tied responses toward equal reward.")
    replay_ratio = models.FloatField(
        default=1.0, help_text="Incremental mode: older pairs replayed per new pair (guards against forgetting)."
    )
    retrain_every_n_labels = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides RETRAIN_EVERY_N_LABELS; 0 turns the label trigger off."
    )
    nightly_at = models.TimeField(null=True, blank=True, help_text="Nightly full retrain (TIME_ZONE); empty = off.")
    nightly_anchor_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The nightly run is due at the first nightly_at after this moment: the last nightly "
        "request or the last change of nightly_at. Empty: after the project's first label.",
    )
    promotion_tolerance = models.FloatField(
        null=True, blank=True, help_text="Overrides PROMOTION_TOLERANCE (held-out accuracy points)."
    )
    min_evaluation_pairs = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides PROMOTION_MIN_EVALUATION_PAIRS."
    )

    class WhenEvaluationInsufficient(models.TextChoices):
        KEEP = "keep", "keep the champion (the challenger is recorded, not promoted)"
        PROMOTE_IF_NOT_WORSE = "promote_if_not_worse", "promote unless its accuracy is lower (the point estimate)"

    when_evaluation_insufficient = models.CharField(
        max_length=24,
        choices=WhenEvaluationInsufficient.choices,
        default=WhenEvaluationInsufficient.KEEP,
        help_text="What the gate does with fewer evaluation pairs than the minimum.",
    )
    priority_head = models.CharField(
        max_length=100, blank=True, default="",
        help_text="The reward head whose scores order items for the uncertainty selection: empty for the overall "
        "preference, else a rating criterion's key (its per-criterion head).",
    )
    excluded_annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", help_text="Their labels are left out of training."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(mode__in=["full", "incremental"]), name="training_policy_mode_valid"),
            models.CheckConstraint(
                condition=Q(aggregation__in=["per_label", "majority", "weighted"]), name="training_policy_aggregation_valid"
            ),
            models.CheckConstraint(
                condition=Q(replay_ratio__gte=0) & Q(replay_ratio__lte=100), name="training_policy_replay_ratio_range"
            ),
            models.CheckConstraint(
                condition=Q(when_evaluation_insufficient__in=["keep", "promote_if_not_worse"]),
                name="training_policy_when_evaluation_insufficient_valid",
            ),
        ]


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
    label_count = models.PositiveIntegerField(default=0, help_text="Labels in the project when the run was requested.")
    label_watermark = models.BigIntegerField(
        default=0,
        help_text="Every label of the project up to this id existed when the snapshot was frozen; the "
        "N-labels trigger counts labels after the last succeeded run's watermark.",
    )
    mode = models.CharField(max_length=16, choices=TrainingPolicy.Mode.choices, default=TrainingPolicy.Mode.FULL)
    max_label_id = models.BigIntegerField(
        default=0, help_text="Newest label in the snapshot; incremental runs train on labels after their parent's."
    )
    worker = models.CharField(max_length=255, blank=True, help_text="hostname:pid of the worker running it.")
    # The row is the source of truth, the broker message only a wake-up call: a
    # queued run whose message was never sent (broker down) or may be lost is
    # sent again by the reconciler (see training.reconciler).
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When a message last reached the broker.")
    dispatch_attempts = models.PositiveIntegerField(default=0)
    dispatch_error = models.TextField(blank=True, help_text="Why the last send failed; empty once one succeeds.")
    config = models.JSONField(default=dict, blank=True)
    snapshot_path = models.CharField(max_length=500, blank=True)
    snapshot_sha256 = models.CharField(max_length=64, blank=True)
    pairs = models.PositiveIntegerField(default=0)
    progress = models.JSONField(default=dict, blank=True, help_text="{step, total_steps, loss, eta_s} while running.")
    loss_curve = models.JSONField(
        default=list, blank=True, help_text="[[step, training loss], ...] as reported while running, for the loss chart."
    )
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
    gate = models.JSONField(
        default=dict, blank=True, help_text="The promotion gate's decision (training.promotion.GateDecision)."
    )
    promoted_at = models.DateTimeField(null=True, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True, help_text="When every response had this version's score.")
    # The leaderboard's mean reward per model, computed once when scoring finishes: averaging a
    # million scores on every load cost most of a second (training.leaderboard.model_rewards_for).
    reward_summary = models.JSONField(
        null=True, blank=True, help_text='{"scored_at": when it was computed for, "models": {model: {mean, ci, n}}}.'
    )
    # Rescoring is resumable and watched like a training run: the reconciler sends it
    # again when its worker went silent, up to SCORING_MAX_ATTEMPTS times.
    scoring_dispatched_at = models.DateTimeField(null=True, blank=True)
    scoring_heartbeat_at = models.DateTimeField(null=True, blank=True)
    scoring_attempts = models.PositiveIntegerField(default=0)
    scoring_error = models.TextField(blank=True)
    # Scores this version held when its scoring last finished. A champion whose project's
    # response counter has passed it has newly imported responses to score (training.reconciler).
    scored_responses = models.PositiveIntegerField(default=0)

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
    # No index of their own: the unique constraint leads with the response (lookups, cascades) and
    # the score index with the version. A rescoring writes a score for every response, and each
    # index costs write-ahead log that annotators' commits wait behind (benchmarks/rescoring_load.py).
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="scores", db_index=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="scores", db_index=False)
    score = models.FloatField()
    # The version's per-criterion heads (training.ml.pooling): {criterion key: reward}; empty
    # for a version without them. ``score`` stays the overall head's, which orders and filters.
    criterion_scores = models.JSONField(default=dict, blank=True, db_default={})
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "model_version"], name="response_score_unique_per_version"),
        ]
        # The Results page sorts and filters a version's scores: an index range in score order.
        indexes = [models.Index(fields=["model_version", "score", "response"], name="response_score_version_idx")]


class AnnotatorExclusionChange(models.Model):
    """A record of an annotator's labels being left out of (or let back into) a project's training data.

    ``TrainingPolicy.excluded_annotators`` holds the current set; these rows say who changed it, when and why.
    """

    class Action(models.TextChoices):
        EXCLUDED = "excluded"
        INCLUDED = "included"

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="exclusion_changes")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(action__in=["excluded", "included"]), name="exclusion_change_action_valid"),
        ]

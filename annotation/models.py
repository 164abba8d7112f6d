"""What annotators label: projects, prompts, responses, comparison items, leases, labels.

Invariants live in the database (see each ``Meta.constraints``), so a race between two
requests is rejected by PostgreSQL rather than silently storing a duplicate.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q


class Project(models.Model):
    class LabelFormat(models.TextChoices):
        PAIRWISE = "pairwise", "pairwise (A/B with strength, tie, both bad)"
        RANKING = "ranking", "ranking of 3-9 responses"

    class RationaleMode(models.TextChoices):
        OFF = "off"
        OPTIONAL = "optional"
        REQUIRED = "required"

    class Status(models.TextChoices):
        ACTIVE = "active", "active: annotators get items"
        PAUSED = "paused", "paused: annotators see the project but get no new items"
        ARCHIVED = "archived", "archived: hidden from annotators, read-only"

    name = models.CharField(max_length=200, unique=True)
    label_format = models.CharField(max_length=16, choices=LabelFormat.choices, default=LabelFormat.PAIRWISE)
    criteria = models.JSONField(
        default=list,
        blank=True,
        help_text='Per-response ratings: [{"key": "helpfulness", "label": "Helpfulness", "scale": 5, "required": false}].',
    )
    rationale_mode = models.CharField(max_length=16, choices=RationaleMode.choices, default=RationaleMode.OPTIONAL)
    selection_order = models.CharField(
        max_length=32, default="sequential", help_text="Name of an entry in annotation.assignment.ORDERINGS."
    )
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    labels_per_item = models.PositiveSmallIntegerField(
        default=1, help_text="How many distinct annotators label each comparison item."
    )
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="annotation_projects", blank=True
    )
    # Membership is the per-project half of the reviewer and annotator roles; the global
    # half, and the admin role, are Django permissions (annotation.roles).
    reviewers = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="reviewed_projects", blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    gold_rate = models.FloatField(
        default=0.0, help_text="Share of an annotator's leases that are gold items (known answers), 0 to 1."
    )
    uncertainty_random_share = models.FloatField(
        default=0.2,
        help_text="With the uncertainty selection order: share of leases drawn uniformly at random instead, "
        "0 to 1, so the labels stay usable for unbiased evaluation.",
    )
    reveal_model_verdict = models.BooleanField(
        default=False,
        help_text="Show annotators the reward model's verdict on an item after they submit it (never before: "
        "seeing it first biases them).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        # The roles (annotation.roles); review and annotate are also object permissions on a project.
        permissions = [
            ("administer", "Can administer every project, person and reward model"),
            ("review", "Can read and review the labels of projects"),
            ("annotate", "Can label projects"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(labels_per_item__gte=1) & Q(labels_per_item__lte=50),
                name="project_labels_per_item_range",
            ),
            models.CheckConstraint(condition=Q(label_format__in=["pairwise", "ranking"]), name="project_label_format_valid"),
            models.CheckConstraint(
                condition=Q(rationale_mode__in=["off", "optional", "required"]), name="project_rationale_mode_valid"
            ),
            models.CheckConstraint(condition=Q(status__in=["active", "paused", "archived"]), name="project_status_valid"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate_range"),
            models.CheckConstraint(
                condition=Q(uncertainty_random_share__gte=0) & Q(uncertainty_random_share__lte=1),
                name="project_uncertainty_random_share_range",
            ),
        ]

    def __str__(self):
        return self.name


class Prompt(models.Model):
    """A conversation to be continued: ``[{"role": "user", "content": "..."}, ...]``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=255)
    conversation = models.JSONField()
    conversation_html = models.JSONField(
        null=True,
        blank=True,
        help_text="Sanitised HTML of each message's content, rendered once at import (null: render when shown).",
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="prompt_unique_external_id_per_project"
            ),
        ]

    def __str__(self):
        return f"{self.project_id}:{self.external_id}"


class Response(models.Model):
    """One model's continuation of a prompt. ``model_name`` is never shown to annotators."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    html = models.TextField(
        null=True, blank=True, help_text="Sanitised HTML of ``text``, rendered once at import (null: render when shown)."
    )
    model_name = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class ComparisonItem(models.Model):
    """A unit of annotation work: one prompt and 2..K of its responses."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="items")
    responses = models.ManyToManyField(Response, through="ComparisonItemResponse", related_name="items")
    label_count = models.PositiveIntegerField(
        default=0, help_text="Submitted labels, kept by label_submit/label_undo so claims skip finished items cheaply."
    )
    gold_ranking = models.JSONField(
        null=True, blank=True,
        help_text="A gold item's known answer: response ids best first, ties grouped. Null for ordinary items.",
    )
    # db_default too: items written around the ORM (COPY in bulk loads) start with no priority.
    model_priority = models.FloatField(
        default=0.0,
        db_default=0.0,
        help_text="How much a label here would teach the reward model, from the champion's scores at its last "
        "rescoring (training.priorities): 1 for a coin toss or a contradicted majority, near 0 when the model is "
        "sure. The uncertainty selection order leases the highest first; 0 everywhere without a model.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["project", "label_count", "id"], name="item_project_open_idx"),
            # The uncertainty order's walk: one ordered scan per label count, like the sequential one.
            models.Index(fields=["project", "label_count", "-model_priority", "id"], name="item_project_priority_idx"),
        ]


class ComparisonItemResponse(models.Model):
    item = models.ForeignKey(ComparisonItem, on_delete=models.CASCADE, related_name="slots")
    response = models.ForeignKey(Response, on_delete=models.CASCADE)
    slot = models.PositiveSmallIntegerField(help_text="Canonical (import) order; display order is per assignment.")

    class Meta:
        ordering = ["item_id", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["item", "response"], name="item_response_unique"),
            models.UniqueConstraint(fields=["item", "slot"], name="item_slot_unique"),
        ]


class Assignment(models.Model):
    """A lease on an item for one annotator.

    An ``active`` assignment counts against the item's wanted overlap until
    ``expires_at``; after that the slot is free for someone else without any sweep.
    ``display_order`` holds the response ids left to right as this annotator saw
    them, so a label maps back to responses exactly.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"

    class Position(models.TextChoices):
        """What the annotator's client calls the responses: A, B, ... left to right in ``display_order``.

        Nine letters, so an item shows at most nine responses (``annotation.importing``).
        """

        A = "A"
        B = "B"
        C = "C"
        D = "D"
        E = "E"
        F = "F"
        G = "G"
        H = "H"
        I = "I"  # noqa: E741 (a position letter, not an ambiguous variable)

    item = models.ForeignKey(ComparisonItem, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    display_order = models.JSONField()
    expires_at = models.DateTimeField()
    skip_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # Nobody is shown the same item twice: a lapsed lease is renewed in place.
            models.UniqueConstraint(fields=["item", "annotator"], name="assignment_unique_item_annotator"),
            models.CheckConstraint(
                condition=Q(status__in=["active", "submitted", "skipped"]), name="assignment_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["annotator", "status"])]


class Label(models.Model):
    """An annotator's judgement on an item.

    ``ranking`` is the general form of every outcome: groups of response ids, best
    group first, responses in one group judged equal. "A better" on a pair is
    ``[[a], [b]]``; a tie is ``[[a, b]]``; "both bad" is ``[[a, b]]`` with ``both_bad``.
    ``ratings`` maps response id (as a string) to ``{criterion key: score}``; ``flags``
    is a list of ``{"flag": ..., "response_id": id or null}``.
    """

    class Flag(models.TextChoices):
        UNSAFE = "unsafe", "unsafe content"
        FACTUAL_ERROR = "factual_error", "factual error"
        PERSONAL_DATA = "personal_data", "personal data"
        BROKEN_PROMPT = "broken_prompt", "broken prompt"

    class Choice(models.TextChoices):
        """A pairwise judgement as the client sends it, A and B being ``Assignment.Position``.

        Stored as ``ranking`` (``annotation.preferences.pairwise_ranking``) with ``is_tie`` or ``both_bad``.
        """

        A = "A", "A is better"
        B = "B", "B is better"
        TIE = "tie", "tie"
        BOTH_BAD = "both_bad", "both bad"

    class ReviewStatus(models.TextChoices):
        UNREVIEWED = "unreviewed"
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        CORRECTED = "corrected"

    class Strength(models.IntegerChoices):
        NEGLIGIBLY = 1, "negligibly better"
        SLIGHTLY = 2, "slightly better"
        BETTER = 3, "better"
        MUCH = 4, "much better"

    item = models.ForeignKey(ComparisonItem, on_delete=models.CASCADE, related_name="labels")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="labels")
    assignment = models.OneToOneField(
        Assignment, on_delete=models.SET_NULL, null=True, blank=True, related_name="label"
    )
    client_id = models.UUIDField(help_text="Chosen by the client; a retried submit with the same id is a no-op.")
    ranking = models.JSONField()
    is_tie = models.BooleanField(default=False)
    both_bad = models.BooleanField(default=False, help_text="Neither response is acceptable; not used as a preference.")
    strength = models.PositiveSmallIntegerField(choices=Strength.choices, null=True, blank=True)
    rationale = models.TextField(blank=True)
    ratings = models.JSONField(default=dict, blank=True)
    flags = models.JSONField(default=list, blank=True)
    seconds_spent = models.FloatField(default=0, help_text="Active (visible-tab) seconds on the item.")
    display_order = models.JSONField(help_text="Response ids left to right as shown.")
    # The latest review's outcome (annotation.LabelReview keeps every decision). A rejected
    # label leaves training data and no longer counts toward the item's labels; a corrected
    # one trains on ``corrected_ranking``.
    # db_default too: labels written around the ORM (COPY in bulk loads) start unreviewed.
    review_status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.UNREVIEWED, db_default=ReviewStatus.UNREVIEWED
    )
    corrected_ranking = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="label_one_per_item_annotator"),
            models.CheckConstraint(
                condition=Q(review_status__in=["unreviewed", "accepted", "rejected", "corrected"]),
                name="label_review_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(review_status="corrected", corrected_ranking__isnull=False)
                | (~Q(review_status="corrected") & Q(corrected_ranking__isnull=True)),
                name="label_corrected_has_ranking",
            ),
            models.UniqueConstraint(fields=["annotator", "client_id"], name="label_unique_client_id"),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | (Q(strength__gte=1) & Q(strength__lte=4)),
                name="label_strength_range",
            ),
            models.CheckConstraint(condition=Q(seconds_spent__gte=0), name="label_seconds_nonnegative"),
            # A tie has no strength: strength says how much better the winner is.
            models.CheckConstraint(
                condition=Q(is_tie=False) | Q(strength__isnull=True), name="label_tie_has_no_strength"
            ),
            models.CheckConstraint(condition=Q(is_tie=False) | Q(both_bad=False), name="label_tie_or_both_bad"),
            models.CheckConstraint(
                condition=Q(both_bad=False) | Q(strength__isnull=True), name="label_both_bad_has_no_strength"
            ),
        ]
        indexes = [models.Index(fields=["item", "created_at"])]


class ProjectProgress(models.Model):
    """How many of a project's items are still short of labels: progress without counting them.

    Kept by the services that change ``ComparisonItem.label_count`` across
    ``labels_per_item`` (import, submit, undo, delete) and recounted when the wanted number
    changes (``annotation.services.progress_recount``). A project without this row (written
    by a bulk loader) is counted the slow way until its next import or recount.
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="progress")
    unfinished_items = models.PositiveIntegerField(default=0)
    # The project's responses, for the Results page's summary: counting a million of them
    # through their prompts cost ~170 ms a request. Null until counted (a bulk loader's row).
    responses = models.PositiveIntegerField(null=True, blank=True)


class AnnotatorProgress(models.Model):
    """One annotator's tallies in one project, so progress costs one row read, not a count of labels.

    Kept by the services that write labels and skips, in the same transaction. Mostly only
    its annotator's own requests touch the row; the submit that completes an item also
    updates ``seen_unfinished`` of the others who labelled or skipped it (rows locked in id
    order, so two such submits cannot deadlock). ``done_today`` counts labels made on
    ``day`` (the server's local date); a row whose ``day`` is not today means none today.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotator_progress")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotation_progress")
    done_total = models.PositiveIntegerField(default=0)
    done_today = models.PositiveIntegerField(default=0)
    day = models.DateField(null=True, blank=True)
    seen_unfinished = models.PositiveIntegerField(
        default=0, help_text="Items this annotator labelled or skipped that are still short of labels."
    )
    # The earliest of these is the project's first label (training's nightly anchor): a read of
    # the project's few rows, where asking the labels walked every older label of every project.
    first_labelled_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When this annotator's first label in the project was made (kept if it was undone; a recount "
        "takes the earliest label still there).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="annotator_progress_unique"),
        ]


class LabelTally(models.Model):
    """Counts over a project's labels, folded in as labels settle, so a read never walks them all.

    ``annotation.tallies`` keeps these rows; the Results page's annotator quality and model
    leaderboard read them. ``counts`` is the kind's tally as JSON (one row per project and kind:
    a few annotators' pairs or models' cells, read and written whole, the same on PostgreSQL
    and SQLite). Which labels are in it: every label with ``id <= watermark``, and the ids in
    ``folded_above``; ``folded`` is how many that is, for the check that notices labels deleted
    around the services (cascades). ``stale`` asks the next reader to rebuild from the labels.
    """

    class Kind(models.TextChoices):
        AGREEMENT = "agreement", "agreement between annotators' labels of the same item"
        MODEL_COMPARISONS = "model_comparisons", "model-vs-model outcomes implied by the labels"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_tallies")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    counts = models.JSONField(default=dict)
    watermark = models.BigIntegerField(default=0, help_text="Every label of the project with id <= this is folded.")
    folded_above = models.JSONField(default=list, help_text="Ids above the watermark that are folded too.")
    folded = models.PositiveIntegerField(default=0, help_text="Labels folded in (both bad included).")
    settled_before = models.DateTimeField(
        null=True, blank=True, help_text="The latest fold's cutoff: labels created before it may be folded."
    )
    stale = models.BooleanField(
        default=False,
        help_text="The next read or fold rebuilds it from the labels (a repair switch: deletions and reviews change a tally in place).",
    )
    version = models.PositiveBigIntegerField(default=0, help_text="Bumped by every write, so a reader can tell it changed.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "kind"], name="label_tally_unique_kind_per_project"),
            models.CheckConstraint(condition=Q(kind__in=["agreement", "model_comparisons"]), name="label_tally_kind_valid"),
        ]


class LabelReview(models.Model):
    """One reviewer's decision on a label, kept for the record; the label holds the latest outcome.

    ``revert`` takes the label back to unreviewed (a rejection is reversible).
    """

    class Decision(models.TextChoices):
        ACCEPT = "accept"
        REJECT = "reject"
        CORRECT = "correct"
        REVERT = "revert"

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="label_reviews")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    reason = models.TextField(blank=True)
    corrected_ranking = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=["accept", "reject", "correct", "revert"]), name="label_review_decision_valid"
            ),
            models.CheckConstraint(
                condition=Q(decision="correct", corrected_ranking__isnull=False)
                | (~Q(decision="correct") & Q(corrected_ranking__isnull=True)),
                name="label_review_correct_has_ranking",
            ),
        ]


class ImportRecord(models.Model):
    """One upload into a project, whether it went in or not: the import history an admin reads."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    source = models.CharField(max_length=255, help_text="The uploaded file's name, or the command that imported.")
    status = models.CharField(max_length=16, choices=Status.choices)
    size_bytes = models.BigIntegerField(default=0)
    prompts = models.PositiveIntegerField(default=0)
    responses = models.PositiveIntegerField(default=0)
    items = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first errors: [{line, field, message}].")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["succeeded", "failed"]), name="import_record_status_valid"),
        ]

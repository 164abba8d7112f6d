"""Request and response shapes of the annotation API. Validation only; no writes."""
from rest_framework import serializers

from annotation.models import Assignment, ImportRecord, Label, Project
from annotation.selectors import user_is_project_admin
from annotation.submission import MAX_FLAGS, MAX_SECONDS_SPENT


class ProjectCriterionSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=64, help_text="A short identifier such as 'helpfulness'.")
    label = serializers.CharField(max_length=200, required=False, allow_blank=True, help_text="Shown to annotators.")
    scale = serializers.IntegerField(required=False, default=5, help_text="5 or 7 points.")
    required = serializers.BooleanField(required=False, default=False)


class ProjectUsernamesField(serializers.ListField):
    """A project's users of one role (a many-to-many: annotators, reviewers) as sorted usernames.

    Reads ``.all()``, so a list view that prefetched the relation runs no query per project.
    """

    child = serializers.CharField()

    def get_attribute(self, instance):
        return sorted(user.username for user in getattr(instance, self.source).all())


class ProjectSerializer(serializers.ModelSerializer):
    guidelines_html = serializers.SerializerMethodField()
    is_admin = serializers.SerializerMethodField()
    criteria = ProjectCriterionSerializer(many=True)
    # Not read-only fields, so the schema can say they may be absent (non-admins get neither).
    annotators = ProjectUsernamesField(required=False, help_text="Admins only: usernames of the annotators.")
    reviewers = ProjectUsernamesField(required=False, help_text="Admins only: usernames of the reviewers.")

    class Meta:
        model = Project
        fields = [
            "id", "name", "guidelines", "guidelines_html", "labels_per_item", "label_format", "criteria",
            "rationale_mode", "selection_order", "status", "gold_rate", "uncertainty_random_share",
            "reveal_model_verdict", "annotators", "reviewers", "is_admin", "created_at",
        ]

    def get_guidelines_html(self, project) -> str:
        from annotation.rendering import render_markdown

        return render_markdown(project.guidelines)

    def get_is_admin(self, project) -> bool:
        return user_is_project_admin(self.context["request"].user)

    def to_representation(self, project):
        data = super().to_representation(project)
        # Who else works on a project is the admins' business, not the annotators'.
        if not user_is_project_admin(self.context["request"].user):
            data.pop("annotators")
            data.pop("reviewers")
        return data


class ProjectWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    guidelines = serializers.CharField(required=False, allow_blank=True, default="", max_length=100_000)
    labels_per_item = serializers.IntegerField(min_value=1, max_value=50, required=False, default=1)
    label_format = serializers.ChoiceField(
        choices=Project.LabelFormat.choices, required=False, default=Project.LabelFormat.PAIRWISE
    )
    criteria = ProjectCriterionSerializer(many=True, required=False, default=list, max_length=20)
    rationale_mode = serializers.ChoiceField(
        choices=Project.RationaleMode.choices, required=False, default=Project.RationaleMode.OPTIONAL
    )
    selection_order = serializers.CharField(
        required=False, default="sequential", max_length=32,
        help_text="sequential, random, or another registered ordering.",
    )
    status = serializers.ChoiceField(
        choices=Project.Status.choices, required=False, default=Project.Status.ACTIVE,
        help_text="paused: annotators see the project but get no new items; archived: hidden from annotators "
        "and read-only (a PATCH of status alone unarchives it).",
    )
    gold_rate = serializers.FloatField(
        min_value=0, max_value=1, required=False, default=0.0,
        help_text="Share of an annotator's leases that are gold items (known answers), 0 to 1.",
    )
    uncertainty_random_share = serializers.FloatField(
        min_value=0, max_value=1, required=False, default=0.2,
        help_text="With the uncertainty selection order (active learning): share of leases drawn uniformly at "
        "random instead of least-certain first, 0 to 1, so the labels stay usable for unbiased evaluation.",
    )
    reveal_model_verdict = serializers.BooleanField(
        required=False, default=False,
        help_text="Show annotators the reward model's verdict on an item after they submit it (in the submit's "
        "answer); never before, since seeing it first biases them. Off by default.",
    )
    annotators = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, max_length=10_000,
        help_text="Usernames of the annotators (replaces the list).",
    )
    reviewers = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, max_length=10_000,
        help_text="Usernames of the reviewers (replaces the list).",
    )


class GuidelinesPreviewSerializer(serializers.Serializer):
    guidelines = serializers.CharField(allow_blank=True, max_length=100_000, trim_whitespace=False)


class GuidelinesPreviewResultSerializer(serializers.Serializer):
    html = serializers.CharField(help_text="Sanitised HTML, as annotators will see the guidelines.")


class MessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()
    html = serializers.CharField(help_text="Sanitised HTML rendering of the Markdown content.")


class BlindResponseSerializer(serializers.Serializer):
    position = serializers.CharField(help_text="A, B, ... left to right. No model name or id is exposed.")
    text = serializers.CharField()
    html = serializers.CharField()


class ProgressSerializer(serializers.Serializer):
    done_today = serializers.IntegerField()
    done_total = serializers.IntegerField()
    remaining = serializers.IntegerField()


class AssignmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    conversation = MessageSerializer(many=True)
    responses = BlindResponseSerializer(many=True)


class NextItemSerializer(serializers.Serializer):
    assignment = AssignmentSerializer(allow_null=True)
    progress = ProgressSerializer()
    paused = serializers.BooleanField(
        help_text="The project is paused (or archived): nothing is leased, `assignment` is null, until it resumes."
    )


class NextItemRequestSerializer(serializers.Serializer):
    exclude = serializers.ListField(
        child=serializers.IntegerField(), required=False, default=list, max_length=10,
        help_text="Assignment ids the client already holds; passing the current one prefetches the next item.",
    )


class FlagSerializer(serializers.Serializer):
    flag = serializers.ChoiceField(choices=Label.Flag.values)
    position = serializers.CharField(required=False, allow_null=True, help_text="Response position, or null for the item.")


class SubmitSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(
        choices=Label.Choice.values, required=False, allow_null=True, default=None,
        help_text="Pairwise projects.",
    )
    ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(max_length=1), allow_empty=False),
        required=False, allow_null=True, default=None,
        help_text='Ranking projects: positions best first, ties grouped, e.g. [["B"], ["A", "C"]].',
    )
    strength = serializers.IntegerField(
        min_value=min(Label.Strength.values), max_value=max(Label.Strength.values),
        required=False, allow_null=True, default=None,
    )
    ratings = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()), required=False, default=dict,
        help_text='Per-response criterion scores by position: {"A": {"helpfulness": 4}}.',
    )
    flags = FlagSerializer(
        many=True, required=False, default=list, max_length=MAX_FLAGS,
        help_text="Each flag and position is stored once, however often it is sent.",
    )
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=10000, default="")
    seconds_spent = serializers.FloatField(required=False, min_value=0, max_value=MAX_SECONDS_SPENT, default=0.0)
    client_id = serializers.UUIDField(help_text="Generated by the client; retries with the same id are no-ops.")
    next = NextItemRequestSerializer(
        required=False, allow_null=True, default=None,
        help_text="Also lease the next item, as next-item with this `exclude` would, and answer it in `next`: "
        "one round trip per label instead of two.",
    )


class SkipSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    next = NextItemRequestSerializer(
        required=False, allow_null=True, default=None,
        help_text="Also lease the next item, as next-item with this `exclude` would, and answer it in `next`.",
    )


class LeaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    expires_at = serializers.DateTimeField()


class SkipResultSerializer(LeaseSerializer):
    progress = ProgressSerializer()
    next = NextItemSerializer(required=False, help_text="Present when the request asked for `next`.")


class LabelSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username")

    class Meta:
        model = Label
        fields = [
            "id", "item", "annotator", "client_id", "ranking", "is_tie", "both_bad", "strength",
            "ratings", "flags", "rationale", "seconds_spent", "display_order", "created_at",
        ]


class LabelPromptMessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()


class LabelResponseTextSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    model_name = serializers.CharField(required=False, help_text="Admins only; annotation stays blind.")


class LabelListItemSerializer(LabelSerializer):
    """A label; with ``include=texts`` also its prompt and its responses' texts in the order shown."""

    # Only used with include=texts (a plain LabelSerializer otherwise). Reads what
    # annotation.label_pages prepared (prompt joined in, ``shown_responses`` set), so
    # serializing a page runs no query.

    prompt = LabelPromptMessageSerializer(
        many=True, source="item.prompt.conversation", required=False,
        help_text="With include=texts: the prompt conversation.",
    )
    prompt_external_id = serializers.CharField(
        source="item.prompt.external_id", required=False, help_text="With include=texts."
    )
    responses = LabelResponseTextSerializer(
        many=True, source="shown_responses", required=False,
        help_text="With include=texts: the responses in the order the annotator saw them.",
    )

    class Meta(LabelSerializer.Meta):
        fields = LabelSerializer.Meta.fields + ["prompt", "prompt_external_id", "responses"]


class ReopenedSerializer(serializers.Serializer):
    assignment = AssignmentSerializer()
    progress = ProgressSerializer()


class ModelVerdictSerializer(serializers.Serializer):
    """The reward model's verdict on the item just labelled, in the positions the annotator saw.

    Positions only: never a response id or model name (annotation stays blind).
    """

    version = serializers.IntegerField(help_text="The reward model's version number.")
    order = serializers.ListField(
        child=serializers.ChoiceField(choices=Assignment.Position.values),
        help_text='Positions best first by the model\'s score, e.g. ["B", "A"].',
    )
    probability = serializers.FloatField(
        help_text="The model's probability that its first response beats its second: sigmoid of their score gap "
        "(0.5 to 1)."
    )
    agrees = serializers.BooleanField(
        allow_null=True,
        help_text="Whether the model's first response is the one chosen (rankings: is in the first group). "
        "Null for a tie or \"both bad\", or when the model scores its first two equal.",
    )


class SubmitResultSerializer(serializers.Serializer):
    label = LabelSerializer()
    created = serializers.BooleanField()
    progress = ProgressSerializer()
    model_verdict = ModelVerdictSerializer(
        allow_null=True,
        help_text="The reward model's verdict on this item; null unless the project reveals it "
        "(`reveal_model_verdict`) and a model has scored every response shown. A retry answers it too.",
    )
    next = NextItemSerializer(
        required=False,
        help_text="Present when the request asked for `next`: the item leased after this one "
        "(`assignment` null when none is open) and the progress after both.",
    )


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="JSONL: one prompt with its responses per line.")


class ImportSummarySerializer(serializers.Serializer):
    prompts = serializers.IntegerField()
    responses = serializers.IntegerField()
    items = serializers.IntegerField()


class ImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True, help_text="Null for an error about the whole file.")
    field = serializers.CharField()
    message = serializers.CharField()


class ImportRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField(help_text="The uploaded file's name, or the command that imported.")
    status = serializers.ChoiceField(choices=ImportRecord.Status.choices)
    uploaded_by = serializers.CharField(
        source="uploaded_by.username", allow_null=True, default=None, help_text="Null for a command-line import."
    )
    size_bytes = serializers.IntegerField()
    prompts = serializers.IntegerField()
    responses = serializers.IntegerField()
    items = serializers.IntegerField()
    error_count = serializers.IntegerField()
    errors = ImportErrorSerializer(many=True, help_text="The first errors (at most 50).")
    created_at = serializers.DateTimeField()


class AnnotatorQualityRowSerializer(serializers.Serializer):
    annotator_id = serializers.IntegerField()
    username = serializers.CharField()
    labels = serializers.IntegerField(help_text="Preference labels (both-bad labels carry none).")
    comparisons = serializers.IntegerField(help_text="Verdicts compared with another annotator's on the same pair.")
    agreement_rate = serializers.FloatField(allow_null=True, help_text="Share of those comparisons that agreed.")
    accuracy = serializers.FloatField(
        allow_null=True,
        help_text="Estimated probability of a right verdict (one-coin model; see docs/training.md). "
        "Weighted aggregation weighs votes by its log-odds.",
    )


class AnnotatorQualitySerializer(serializers.Serializer):
    agreement_rate = serializers.FloatField(allow_null=True, help_text="Inter-annotator agreement over the project.")
    comparisons = serializers.IntegerField()
    pool_accuracy = serializers.FloatField(
        allow_null=True, help_text="Mean annotator accuracy implied by the agreement; null at or below chance."
    )
    annotators = AnnotatorQualityRowSerializer(many=True)

import math

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from training import selectors
from training.models import ModelVersion, TrainingPolicy, TrainingRun


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
        "example": "03:15",
    }
)
class WallClockTimeField(serializers.TimeField):
    """A time of day without an offset (it is in TIME_ZONE): in "HH:MM", out "HH:MM:SS".

    OpenAPI's ``format: time`` is RFC 3339's full-time, which requires an offset, so the
    schema describes it with a pattern instead.
    """


class TrainingPolicySerializer(serializers.ModelSerializer):
    nightly_at = WallClockTimeField(allow_null=True, help_text=TrainingPolicy._meta.get_field("nightly_at").help_text)
    excluded_annotator_ids = serializers.SerializerMethodField()
    time_zone = serializers.SerializerMethodField(help_text="The time zone of nightly_at (the server's TIME_ZONE).")
    next_nightly_at = serializers.SerializerMethodField(
        help_text="When the next nightly full retrain is due (with its UTC offset); null when off or before any label."
    )
    defaults = serializers.SerializerMethodField(
        help_text="The server-wide values used where a field here is null."
    )

    class Meta:
        model = TrainingPolicy
        fields = [
            "mode", "aggregation", "train_on_ties", "replay_ratio", "retrain_every_n_labels", "nightly_at",
            "time_zone", "next_nightly_at", "promotion_tolerance", "min_evaluation_pairs",
            "when_evaluation_insufficient", "priority_head", "excluded_annotator_ids", "defaults",
        ]

    def get_excluded_annotator_ids(self, policy) -> list[int]:
        return sorted(policy.excluded_annotators.values_list("id", flat=True)) if policy.pk else []

    def get_time_zone(self, policy) -> str:
        return settings.TIME_ZONE

    def get_next_nightly_at(self, policy) -> str | None:
        due = selectors.next_nightly_at(policy)
        return due.isoformat() if due else None

    def get_defaults(self, policy) -> dict:
        return {
            "retrain_every_n_labels": settings.RETRAIN_EVERY_N_LABELS,
            "promotion_tolerance": settings.PROMOTION_TOLERANCE,
            "min_evaluation_pairs": settings.PROMOTION_MIN_EVALUATION_PAIRS,
        }


class TrainingPolicyUpdateSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=TrainingPolicy.Mode.choices, required=False)
    aggregation = serializers.ChoiceField(choices=TrainingPolicy.Aggregation.choices, required=False)
    train_on_ties = serializers.BooleanField(required=False)
    replay_ratio = serializers.FloatField(min_value=0, max_value=100, required=False)
    retrain_every_n_labels = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    nightly_at = WallClockTimeField(required=False, allow_null=True)
    promotion_tolerance = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    min_evaluation_pairs = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, allow_null=True)
    when_evaluation_insufficient = serializers.ChoiceField(
        choices=TrainingPolicy.WhenEvaluationInsufficient.choices, required=False
    )
    priority_head = serializers.CharField(
        max_length=100, allow_blank=True, required=False,
        help_text=TrainingPolicy._meta.get_field("priority_head").help_text,
    )
    excluded_annotator_ids = serializers.ListField(child=serializers.IntegerField(), required=False)


class ModelVersionSerializer(serializers.ModelSerializer):
    is_champion = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id", "version", "status", "is_champion", "metrics", "champion_metrics", "gate", "config",
            "data_sha256", "seed", "code_version", "parent", "training_run", "created_at",
            "promoted_at", "scored_at", "scoring_attempts", "scoring_error",
        ]

    def get_is_champion(self, version) -> bool:
        return version.status == ModelVersion.Status.CHAMPION


class ChampionSerializer(serializers.ModelSerializer):
    scored = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["id", "version", "metrics", "gate", "promoted_at", "scored", "scoring_attempts", "scoring_error"]

    def get_scored(self, version) -> bool:
        return version.scored_at is not None


class TrainingRunSerializer(serializers.ModelSerializer):
    model_version = serializers.SerializerMethodField()
    waiting = serializers.SerializerMethodField(
        help_text="For a queued run, what it is waiting for (the broker, or a free worker); null otherwise."
    )

    class Meta:
        model = TrainingRun
        fields = [
            "id", "status", "trigger", "mode", "label_count", "pairs", "snapshot_sha256", "progress", "worker",
            "error", "created_at", "started_at", "finished_at", "model_version", "dispatched_at",
            "dispatch_attempts", "dispatch_error", "waiting",
        ]

    def get_model_version(self, run) -> int | None:
        version = getattr(run, "model_version", None)
        return version.id if version else None

    def get_waiting(self, run) -> str | None:
        if run.status != TrainingRun.Status.QUEUED:
            return None
        if run.dispatch_error:
            return f"Waiting for the broker: {run.dispatch_error}"
        if run.dispatched_at is None:
            return "Being sent to the workers."
        return "Sent to the workers; waiting for a free training worker."


class TrainingRunRequestResultSerializer(serializers.Serializer):
    run = TrainingRunSerializer()
    created = serializers.BooleanField(help_text="False when an active run already existed (requests coalesce).")


class ScoresQuerySerializer(serializers.Serializer):
    """The query of ``GET /api/projects/{id}/scores/``: one page of the responses table."""

    page_size = serializers.IntegerField(min_value=1, max_value=500, default=50, help_text="Rows per page, 1 to 500.")
    cursor = serializers.CharField(
        required=False, max_length=500, help_text="Opaque: take it from a `next` or `previous` link."
    )
    model = serializers.CharField(required=False, max_length=200, help_text="Only this generating model (exact name).")
    min_score = serializers.FloatField(required=False, help_text="Only responses scored at least this (inclusive).")
    max_score = serializers.FloatField(required=False, help_text="Only responses scored at most this (inclusive).")
    q = serializers.CharField(
        required=False, max_length=200, trim_whitespace=True,
        help_text="Case-insensitive substring of the prompt's external id or the response text (a scan: slow on big projects).",
    )
    sort = serializers.ChoiceField(
        choices=selectors.SCORE_SORTS, default="prompt",
        help_text="prompt (prompt, then response id), score or -score (unscored responses last either way).",
    )
    include = serializers.ChoiceField(
        choices=["models"], required=False, help_text="models: add the project's model names (for a filter list)."
    )
    html = serializers.BooleanField(
        default=False,
        help_text="true: each row also carries `html`, the response rendered from Markdown and sanitised "
        "(the stored rendering, or the first 4,000 characters of a long text), and `html_truncated`.",
    )
    count = serializers.BooleanField(
        default=False,
        help_text="true: the body's `matching` counts the responses these filters let through, up to 10,000. "
        "Free without filters; with a search it scans the texts as the search itself does.",
    )

    def validate_min_score(self, value):
        return self._finite(value)

    def validate_max_score(self, value):
        return self._finite(value)

    @staticmethod
    def _finite(value):
        if not math.isfinite(value):
            raise serializers.ValidationError("A finite number is required.")
        return value

    def validate(self, attrs):
        low, high = attrs.get("min_score"), attrs.get("max_score")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"max_score": ["Must be at least min_score."]})
        return attrs


class ScoredResponseSerializer(serializers.Serializer):
    response_id = serializers.IntegerField(source="id")
    prompt_external_id = serializers.CharField(source="prompt.external_id")
    prompt_preview = serializers.SerializerMethodField(help_text="The last user message, first 120 characters.")
    model_name = serializers.CharField()
    text_preview = serializers.CharField(help_text="The response's plain text, first 160 characters.")
    score = serializers.FloatField(allow_null=True)
    criterion_scores = serializers.DictField(
        child=serializers.FloatField(), allow_null=True,
        help_text="The version's per-criterion heads: {criterion key: reward} (see `criteria`); {} for a version "
        "without them, null when unscored.",
    )
    top_probability = serializers.FloatField(
        allow_null=True,
        help_text="For the highest-scored response of a fully scored prompt: P(it beats the runner-up), "
        "sigmoid of the score difference; null for every other response.",
    )

    # Present only with ?html=true: the selector sets these attributes then, and a required=False
    # field whose attribute is missing is left out (so the row's Response.html is never read here).
    html = serializers.CharField(
        source="rendered_html",
        required=False,
        help_text="Only with ?html=true: the response as sanitised HTML (Markdown rendered; safe to insert).",
    )
    html_truncated = serializers.BooleanField(
        required=False, help_text="Only with ?html=true: `html` renders only the start of a long response."
    )

    def get_prompt_preview(self, response) -> str:
        last_user = [m["content"] for m in response.prompt.conversation if m.get("role") == "user"]
        return (last_user[-1] if last_user else "")[:120]


class ScoresSummarySerializer(serializers.Serializer):
    responses = serializers.IntegerField(help_text="Responses of the project, whatever the filters.")
    scored = serializers.IntegerField(help_text="Of them, scored by the version shown (scores_version).")
    champion_scored = serializers.IntegerField(
        help_text="Of them, scored by the champion so far (the same as scored once the champion is shown)."
    )


class MatchingCountSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Responses matching the filters, at most 10,000.")
    capped = serializers.BooleanField(help_text="More responses match than were counted.")


class ProjectScoresSerializer(serializers.Serializer):
    champion = ChampionSerializer(allow_null=True)
    scores_version = serializers.IntegerField(
        allow_null=True,
        help_text="The version whose scores are in results: the champion once it has scored every response; "
        "while a new champion is still scoring, the previous champion (its complete set), so a page never "
        "mixes versions. Null without a champion.",
    )
    criteria = serializers.ListField(
        child=serializers.CharField(),
        help_text="The criteria (keys of the project's rating criteria) whose reward heads scores_version has: "
        "each row's criterion_scores holds one reward per key.",
    )
    summary = ScoresSummarySerializer()
    models = serializers.ListField(
        child=serializers.CharField(), allow_null=True, help_text="Model names, with ?include=models; null otherwise."
    )
    matching = MatchingCountSerializer(
        allow_null=True, help_text="With ?count=true: how many responses the filters let through; null otherwise."
    )
    next = serializers.URLField(allow_null=True, help_text="The following page; null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The page before; null on the first.")
    results = ScoredResponseSerializer(many=True)


class LeaderboardQuerySerializer(serializers.Serializer):
    bootstrap = serializers.IntegerField(
        min_value=100, max_value=1000, default=200, help_text="Bootstrap rounds for the rating intervals."
    )


class LeaderboardModelSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The generating model's name (Response.model_name).")
    rating = serializers.FloatField(
        allow_null=True, help_text="Bradley–Terry rating on the Elo scale (mean 1000); null without comparisons."
    )
    rating_ci = serializers.ListField(
        child=serializers.FloatField(), min_length=2, max_length=2, allow_null=True,
        help_text="95 % percentile bootstrap interval [low, high] of the rating.",
    )
    comparisons = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    ties = serializers.IntegerField()
    mean_reward = serializers.FloatField(allow_null=True, help_text="Mean score of the model's responses under scores_version.")
    mean_reward_ci = serializers.ListField(
        child=serializers.FloatField(), min_length=2, max_length=2, allow_null=True,
        help_text="mean ± 1.96·sd/√n; null below two scored responses.",
    )
    scored_responses = serializers.IntegerField()


class LeaderboardSerializer(serializers.Serializer):
    models = LeaderboardModelSerializer(many=True)
    win_rate = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField()),
        help_text="Observed {a: {b: share of a-vs-b comparisons a won}}, ties counted half.",
    )
    bootstrap_rounds = serializers.IntegerField()
    champion_version = serializers.IntegerField(allow_null=True)
    scores_version = serializers.IntegerField(
        allow_null=True,
        help_text="The version whose scores give mean_reward: the champion once it has scored every response, "
        "the previous champion until then (the scores API's scores_version).",
    )
    comparisons = serializers.IntegerField(help_text="Model-vs-model comparisons the labels imply.")

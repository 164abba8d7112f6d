from rest_framework import serializers

from training.models import ModelVersion, TrainingRun


class ModelVersionSerializer(serializers.ModelSerializer):
    is_champion = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id", "version", "status", "is_champion", "metrics", "champion_metrics", "config",
            "data_sha256", "seed", "code_version", "parent", "training_run", "created_at",
            "promoted_at", "scored_at",
        ]

    def get_is_champion(self, version) -> bool:
        return version.status == ModelVersion.Status.CHAMPION


class ChampionSerializer(serializers.ModelSerializer):
    scored = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["id", "version", "metrics", "promoted_at", "scored"]

    def get_scored(self, version) -> bool:
        return version.scored_at is not None


class TrainingRunSerializer(serializers.ModelSerializer):
    model_version = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id", "status", "trigger", "label_count", "pairs", "snapshot_sha256", "progress",
            "error", "created_at", "started_at", "finished_at", "model_version",
        ]

    def get_model_version(self, run) -> int | None:
        version = getattr(run, "model_version", None)
        return version.id if version else None


class TrainingRunRequestResultSerializer(serializers.Serializer):
    run = TrainingRunSerializer()
    created = serializers.BooleanField(help_text="False when an active run already existed (requests coalesce).")


class ScoredResponseSerializer(serializers.Serializer):
    response_id = serializers.IntegerField(source="id")
    prompt_external_id = serializers.CharField(source="prompt.external_id")
    prompt_preview = serializers.SerializerMethodField()
    model_name = serializers.CharField()
    text_preview = serializers.SerializerMethodField()
    score = serializers.FloatField(allow_null=True)

    def get_prompt_preview(self, response) -> str:
        last_user = [m["content"] for m in response.prompt.conversation if m.get("role") == "user"]
        return (last_user[-1] if last_user else "")[:120]

    def get_text_preview(self, response) -> str:
        return response.text[:160]


class ProjectScoresSerializer(serializers.Serializer):
    champion = ChampionSerializer(allow_null=True)
    responses = ScoredResponseSerializer(many=True)

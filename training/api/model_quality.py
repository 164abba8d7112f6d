"""model_quality: annotators against each other and the champion, exclusions from training (views and routes).

Admins only, like the rest of the model side (docs/security.md): reviewers get nothing that names models or
changes what trains. The project's annotators get 403, anyone else the 404 an unknown id gets.
"""
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import selectors
from annotation.serializers import AnnotatorQualityRowSerializer
from training import model_quality
from training.models import AnnotatorExclusionChange


class GoldCountSerializer(serializers.Serializer):
    labels = serializers.IntegerField()
    correct = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)


class PositionSerializer(serializers.Serializer):
    left = serializers.IntegerField()
    decisive = serializers.IntegerField()
    left_share = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True, help_text="Two-sided exact binomial test against 0.5.")


class SpeedSerializer(serializers.Serializer):
    timed = serializers.IntegerField()
    too_fast = serializers.IntegerField()


class ModelAgreementSerializer(serializers.Serializer):
    compared = serializers.IntegerField(help_text="Preferred pairs the champion scored differently (newest labels).")
    agreed = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)


class AnnotatorReportRowSerializer(AnnotatorQualityRowSerializer):
    gold = GoldCountSerializer(
        allow_null=True, help_text="Gold items labelled and how many matched the answer; null with details=false."
    )
    position_bias = PositionSerializer(
        allow_null=True, help_text="Null in ranking projects, without decisive labels, or with details=false."
    )
    speed = SpeedSerializer(
        allow_null=True, help_text="Timed labels and how many were faster than reading time; null with details=false."
    )
    model_agreement = ModelAgreementSerializer(allow_null=True, help_text="Null with details=false.")
    excluded = serializers.BooleanField(help_text="Their labels are left out of training.")


class AnnotatorReportSerializer(serializers.Serializer):
    agreement_rate = serializers.FloatField(allow_null=True)
    comparisons = serializers.IntegerField()
    pool_accuracy = serializers.FloatField(allow_null=True)
    has_champion = serializers.BooleanField()
    details = serializers.BooleanField(help_text="Whether gold, position bias, speed and model agreement were computed.")
    annotators = AnnotatorReportRowSerializer(many=True)


class AnnotatorReportQuerySerializer(serializers.Serializer):
    details = serializers.BooleanField(
        required=False, default=True,
        help_text="false: only the figures kept in the label tallies (fast at any size); the rest come back null.",
    )


class ExclusionRequestSerializer(serializers.Serializer):
    excluded = serializers.BooleanField(help_text="true: leave their labels out of training; false: let them back in.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    def validate_reason(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("must not contain the NUL character")
        return value


class ExclusionChangeSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username")
    changed_by = serializers.CharField(source="changed_by.username", allow_null=True, default=None)

    class Meta:
        model = AnnotatorExclusionChange
        fields = ["id", "annotator_id", "annotator", "action", "changed_by", "reason", "created_at"]


class ExclusionResultSerializer(serializers.Serializer):
    excluded = serializers.BooleanField()
    change = ExclusionChangeSerializer(allow_null=True, help_text="Null when the annotator was already in that state.")


class DisagreementQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=model_quality.MAX_DISAGREEMENTS, default=50, required=False)


class DisagreementSideSerializer(serializers.Serializer):
    response_id = serializers.IntegerField()
    model_name = serializers.CharField(allow_blank=True)
    text_preview = serializers.CharField(allow_blank=True)
    score = serializers.FloatField()


class DisagreementSerializer(serializers.Serializer):
    item_id = serializers.IntegerField()
    prompt_external_id = serializers.CharField(allow_blank=True)
    prompt_preview = serializers.CharField(allow_blank=True)
    people_preferred = DisagreementSideSerializer()
    model_preferred = DisagreementSideSerializer()
    votes_for_people = serializers.IntegerField(help_text="Labels that preferred the people's side.")
    votes = serializers.IntegerField(help_text="Labels covering the pair (ties included).")
    confidence = serializers.FloatField(help_text="The champion's probability for its side: sigmoid(score difference).")


class ChampionRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()


class DisagreementsSerializer(serializers.Serializer):
    champion = ChampionRefSerializer(
        allow_null=True,
        help_text="The version whose scores were read, as on the Results page: the champion, or while a newly "
        "promoted champion is still scoring, the previous champion with its complete set.",
    )
    labels_read = serializers.IntegerField(help_text=f"The newest labels read (at most {model_quality.MODEL_WINDOW}).")
    results = DisagreementSerializer(many=True)


class AnnotatorReportView(APIView):
    @extend_schema(
        responses=AnnotatorReportSerializer,
        summary="Per annotator: labels, agreement, accuracy, gold accuracy, position bias, speed, agreement "
        "with the champion, exclusion (admins)",
        parameters=[AnnotatorReportQuerySerializer],
    )
    def get(self, request, project_id: int):
        project = selectors.project_get_for_admin(user=request.user, project_id=project_id)
        query = AnnotatorReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = model_quality.project_annotator_report(project=project, details=query.validated_data["details"])
        return Response(AnnotatorReportSerializer(report).data)


class AnnotatorExclusionView(APIView):
    @extend_schema(
        request=ExclusionRequestSerializer,
        responses=ExclusionResultSerializer,
        summary="Leave an annotator's labels out of training, or let them back in; recorded (admins)",
    )
    def post(self, request, project_id: int, annotator_id: int):
        project = selectors.project_get_for_admin(user=request.user, project_id=project_id)
        serializer = ExclusionRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        change = model_quality.annotator_exclusion_set(
            project=project, annotator_id=annotator_id, changed_by=request.user, **serializer.validated_data
        )
        body = {"excluded": serializer.validated_data["excluded"], "change": change}
        return Response(ExclusionResultSerializer(body).data)


class ExclusionChangeListView(APIView):
    @extend_schema(
        responses=ExclusionChangeSerializer(many=True),
        summary="Who was left out of training or let back in, newest first (admins)",
    )
    def get(self, request, project_id: int):
        project = selectors.project_get_for_admin(user=request.user, project_id=project_id)
        return Response(ExclusionChangeSerializer(model_quality.exclusion_changes_for(project=project), many=True).data)


class ModelDisagreementsView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description=f"At most {model_quality.MAX_DISAGREEMENTS}; 50 by default.")],
        responses=DisagreementsSerializer,
        summary="Response pairs where the champion contradicts the people's majority, most confident first (admins)",
    )
    def get(self, request, project_id: int):
        project = selectors.project_get_for_admin(user=request.user, project_id=project_id)
        query = DisagreementQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = model_quality.model_disagreements(project=project, limit=query.validated_data["limit"])
        return Response(DisagreementsSerializer(body).data)


urlpatterns = [
    path("projects/<int:project_id>/annotator-report/", AnnotatorReportView.as_view(), name="annotator-report"),
    path(
        "projects/<int:project_id>/annotators/<int:annotator_id>/exclusion/",
        AnnotatorExclusionView.as_view(),
        name="annotator-exclusion",
    ),
    path("projects/<int:project_id>/exclusion-changes/", ExclusionChangeListView.as_view(), name="exclusion-changes"),
    path("projects/<int:project_id>/model-disagreements/", ModelDisagreementsView.as_view(), name="model-disagreements"),
]

"""quality: gold items and the project's label statistics (views and routes).

Reading the statistics is for the project's admins and reviewers (its annotators get 403); marking gold items is for
admins. Anyone else gets the 404 an unknown id gets.
"""
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import gold, selectors, statistics
from annotation.quality import project_annotator_quality

MAX_RANKING_GROUPS = gold.MAX_GOLD_RESPONSES


class GoldRankingSerializer(serializers.Serializer):
    ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(min_value=1), allow_empty=False, max_length=MAX_RANKING_GROUPS),
        allow_empty=False,
        max_length=MAX_RANKING_GROUPS,
        help_text="The known answer: the item's response ids, best first, ties grouped, e.g. [[12], [11]]. "
        "Every response of the item exactly once.",
    )


class ItemGoldSerializer(serializers.Serializer):
    item_id = serializers.IntegerField()
    gold_ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()), allow_null=True,
        help_text="Response ids best first, ties grouped; null for an ordinary item.",
    )


class AlphaSerializer(serializers.Serializer):
    nominal = serializers.FloatField(allow_null=True, help_text="Krippendorff's alpha over A / B / tie per response pair.")
    ordinal = serializers.FloatField(allow_null=True, help_text="Krippendorff's alpha over the signed strength (pairwise).")
    units = serializers.IntegerField(help_text="Response pairs with two verdicts or more.")
    items = serializers.IntegerField(help_text=f"Items read: the newest ones labelled twice (at most {statistics.ALPHA_MAX_ITEMS}).")


class PositionBiasSerializer(serializers.Serializer):
    left = serializers.IntegerField(help_text="Decisive pairwise labels that chose the left response.")
    decisive = serializers.IntegerField(help_text="Pairwise labels that chose a side.")
    left_share = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True, help_text="Two-sided exact binomial test against 0.5.")


class GoldSummarySerializer(serializers.Serializer):
    labels = serializers.IntegerField(help_text="Labels of gold items (both-bad left out).")
    correct = serializers.IntegerField(help_text="Those whose every verdict matches the answer.")
    accuracy = serializers.FloatField(allow_null=True)


class SpeedSummarySerializer(serializers.Serializer):
    timed = serializers.IntegerField(help_text=f"Timed labels among the newest {statistics.SPEED_WINDOW}.")
    too_fast = serializers.IntegerField(
        help_text=f"Faster than words shown / {statistics.READING_WORDS_PER_MINUTE} per minute, "
        f"at least {statistics.MIN_READING_SECONDS:g} s."
    )


class QualityStatisticsSerializer(serializers.Serializer):
    agreement_rate = serializers.FloatField(allow_null=True, help_text="Raw inter-annotator agreement (stored tallies).")
    comparisons = serializers.IntegerField()
    pool_accuracy = serializers.FloatField(allow_null=True)
    alpha = AlphaSerializer()
    position_bias = PositionBiasSerializer(allow_null=True, help_text="Null for ranking projects.")
    gold = GoldSummarySerializer()
    speed = SpeedSummarySerializer()


class ItemGoldView(APIView):
    @extend_schema(request=GoldRankingSerializer, responses=ItemGoldSerializer, summary="Make an item gold with its answer (admins)")
    def put(self, request, item_id: int):
        item = gold.item_get_for_admin(user=request.user, item_id=item_id)
        serializer = GoldRankingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = gold.item_gold_set(item=item, ranking=serializer.validated_data["ranking"])
        return Response(ItemGoldSerializer({"item_id": item.id, "gold_ranking": item.gold_ranking}).data)

    @extend_schema(request=None, responses={200: ItemGoldSerializer}, summary="Make a gold item ordinary again (admins)")
    def delete(self, request, item_id: int):
        item = gold.item_get_for_admin(user=request.user, item_id=item_id)
        item = gold.item_gold_clear(item=item)
        return Response(ItemGoldSerializer({"item_id": item.id, "gold_ranking": None}).data)


class QualityStatisticsView(APIView):
    @extend_schema(
        responses=QualityStatisticsSerializer,
        summary="Agreement, Krippendorff's alpha, position bias, gold accuracy and speed of a project's labels "
        "(admins and reviewers)",
    )
    def get(self, request, project_id: int):
        project = selectors.project_get_for_review_reader(user=request.user, project_id=project_id)
        quality = project_annotator_quality(project_id=project.id)
        speed = statistics.speed_outliers(project=project)
        body = {
            "agreement_rate": quality["agreement_rate"],
            "comparisons": quality["comparisons"],
            "pool_accuracy": quality["pool_accuracy"],
            "alpha": statistics.project_alpha(project_id=project.id),
            "position_bias": (
                statistics.project_position_bias(project=project)
                if project.label_format == project.LabelFormat.PAIRWISE else None
            ),
            "gold": gold.project_gold_summary(gold.gold_accuracy_counts(project_id=project.id)),
            "speed": {
                "timed": sum(row["timed"] for row in speed.values()),
                "too_fast": sum(row["too_fast"] for row in speed.values()),
            },
        }
        return Response(QualityStatisticsSerializer(body).data)


urlpatterns = [
    path("items/<int:item_id>/gold/", ItemGoldView.as_view(), name="item-gold"),
    path("projects/<int:project_id>/quality-statistics/", QualityStatisticsView.as_view(), name="project-quality-statistics"),
]

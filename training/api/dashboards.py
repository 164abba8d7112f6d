"""The project dashboard's API: every chart's series in one answer (admins only).

One endpoint rather than one per chart: the page draws all five at once and polls them together,
and each series is bounded (``training.dashboards``), so the whole answer stays small.
"""
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.selectors import project_get_for_admin
from training.dashboards import project_dashboard
from training.models import ModelVersion, TrainingRun


class AnnotatorDaysSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="Labels per day, in the order of `days`.")
    total = serializers.IntegerField(help_text="Labels in the whole window.")


class LabelsPerDaySerializer(serializers.Serializer):
    days = serializers.ListField(
        child=serializers.DateField(), help_text="The last 30 local days (time_zone), oldest first, today last."
    )
    annotators = AnnotatorDaysSerializer(many=True, help_text="Annotators with a label in the window, most labels first.")


class LabelsPerHourSerializer(serializers.Serializer):
    hours = serializers.ListField(
        child=serializers.DateTimeField(), help_text="Starts of the last 48 hours (UTC), the current hour last."
    )
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="Labels per hour, in the order of `hours`.")


class AgreementWeekSerializer(serializers.Serializer):
    week = serializers.DateField(help_text="The week's Monday (local time_zone).")
    agreement = serializers.FloatField(
        allow_null=True, help_text="Share of response pairs on which two labels of one item, both made that week, agree."
    )
    comparisons = serializers.IntegerField(help_text="Response pairs compared.")
    labels = serializers.IntegerField(help_text="Labels read for the week (both bad left out).")
    capped = serializers.BooleanField(help_text="The week had more labels than are read; the figure is over the first.")


class VersionAccuracySerializer(serializers.Serializer):
    version = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ModelVersion.Status.choices)
    accuracy = serializers.FloatField(allow_null=True, help_text="Held-out accuracy, 0 to 1; null when not measured.")
    pairs = serializers.IntegerField(allow_null=True, help_text="Held-out pairs it was measured on.")
    interval = serializers.ListField(
        child=serializers.FloatField(), min_length=2, max_length=2, allow_null=True, help_text="95 % interval [low, high]."
    )
    interval_source = serializers.ChoiceField(
        choices=["stored", "wilson"], allow_null=True,
        help_text="stored: the metrics' accuracy_ci; wilson: computed from accuracy and pairs.",
    )


class LossCurveSerializer(serializers.Serializer):
    run = serializers.IntegerField(help_text="The training run's id.")
    status = serializers.ChoiceField(choices=TrainingRun.Status.choices)
    created_at = serializers.DateTimeField()
    model_version = serializers.IntegerField(allow_null=True, help_text="The version number it produced, if any.")
    points = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        help_text="[[step, training loss], ...], at most 500 points (thinned evenly on long runs).",
    )


class DashboardSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField(help_text="The moment every window ends at.")
    time_zone = serializers.CharField(help_text="The server's TIME_ZONE, in which days and weeks are counted.")
    labels_per_day = LabelsPerDaySerializer()
    labels_per_hour = LabelsPerHourSerializer()
    agreement_per_week = AgreementWeekSerializer(many=True, help_text="The last 8 weeks, oldest first.")
    accuracy_per_version = VersionAccuracySerializer(many=True, help_text="Every model version, oldest first.")
    loss_curves = LossCurveSerializer(many=True, help_text="The newest 10 runs with a loss curve, newest first.")


class ProjectDashboardView(APIView):
    @extend_schema(
        responses=DashboardSerializer,
        summary="The project dashboard's series: labels per day and hour, agreement per week, accuracy per version, loss curves",
    )
    def get(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        return Response(DashboardSerializer(project_dashboard(project)).data)


urlpatterns = [
    path("projects/<int:project_id>/dashboard/", ProjectDashboardView.as_view(), name="project-dashboard"),
]

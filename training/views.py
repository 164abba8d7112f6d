"""API views for project admins: model versions, training runs, response scores."""
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from annotation.selectors import project_get_for_admin
from training import selectors, services
from training.models import TrainingRun
from training.serializers import (
    ModelVersionSerializer,
    TrainingPolicySerializer,
    TrainingPolicyUpdateSerializer,
    ProjectScoresSerializer,
    ScoresQuerySerializer,
    TrainingRunRequestResultSerializer,
    TrainingRunSerializer,
)
from training.leaderboard import leaderboard_for
from training.serializers import LeaderboardQuerySerializer, LeaderboardSerializer


class ProjectScoresView(APIView):
    @extend_schema(
        parameters=[ScoresQuerySerializer],
        responses=ProjectScoresSerializer,
        summary="A page of responses with the champion's reward score (keyset: follow next/previous)",
    )
    def get(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        query = ScoresQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        champion = selectors.champion_for(project)
        # The champion's scores once they are complete, the last complete set until then: one version per page.
        shown = selectors.scores_version_for(project, champion=champion)
        filters = selectors.ScoresFilter(
            model=params.get("model"), min_score=params.get("min_score"), max_score=params.get("max_score"),
            q=params.get("q") or None, sort=params["sort"],
        )
        page = selectors.responses_scores_page(
            project, shown, filters=filters, page_size=params["page_size"], cursor=params.get("cursor"),
            with_html=params["html"],
        )
        body = {
            "champion": champion,
            "scores_version": shown.version if shown else None,
            "criteria": selectors.version_criteria(shown),
            "summary": selectors.scores_summary(project, shown, champion),
            "models": selectors.project_model_names(project) if params.get("include") == "models" else None,
            "matching": selectors.responses_matching_count(project, shown, filters=filters) if params["count"] else None,
            "next": self._link(request, page.next_cursor),
            "previous": self._link(request, page.previous_cursor),
            "results": page.rows,
        }
        return Response(ProjectScoresSerializer(body).data)

    @staticmethod
    def _link(request, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        return replace_query_param(request.build_absolute_uri(), "cursor", cursor)


class ModelVersionListView(APIView):
    @extend_schema(responses=ModelVersionSerializer(many=True), summary="Model versions, newest first")
    def get(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        return Response(ModelVersionSerializer(selectors.model_versions_for(project), many=True).data)


class TrainingRunListView(APIView):
    @extend_schema(responses=TrainingRunSerializer(many=True), summary="Training runs, newest first")
    def get(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        return Response(TrainingRunSerializer(selectors.training_runs_for(project)[:50], many=True).data)

    @extend_schema(
        request=None,
        responses={202: TrainingRunRequestResultSerializer},
        summary="Train now (coalesces with a queued or running run)",
    )
    def post(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        run, created = services.training_run_request(project=project, trigger=TrainingRun.Trigger.MANUAL)
        body = {"run": run, "created": created}
        return Response(TrainingRunRequestResultSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class ModelVersionPromoteView(APIView):
    @extend_schema(
        request=None,
        responses=ModelVersionSerializer,
        summary="Make this version the champion by hand (override the gate, or roll back)",
    )
    def post(self, request, version_id: int):
        version = selectors.model_version_get_for_admin(user=request.user, version_id=version_id)
        version = services.model_version_promote(version=version)
        return Response(ModelVersionSerializer(version).data)


class TrainingPolicyView(APIView):
    @extend_schema(responses=TrainingPolicySerializer, summary="How the project retrains")
    def get(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        return Response(TrainingPolicySerializer(selectors.training_policy_for(project)).data)

    @extend_schema(request=TrainingPolicyUpdateSerializer, responses=TrainingPolicySerializer, summary="Change how the project retrains")
    def patch(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        serializer = TrainingPolicyUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        policy = services.training_policy_update(project=project, changed_by=request.user, **serializer.validated_data)
        return Response(TrainingPolicySerializer(policy).data)


class LeaderboardView(APIView):
    @extend_schema(
        parameters=[LeaderboardQuerySerializer],
        responses=LeaderboardSerializer,
        summary="Generating models ranked by annotators (Bradley–Terry), beside the champion's mean reward",
    )
    def get(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        query = LeaderboardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        board = leaderboard_for(project, bootstrap_rounds=query.validated_data["bootstrap"])
        return Response(LeaderboardSerializer(board).data)

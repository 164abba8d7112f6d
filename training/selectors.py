"""Reads for the training side, scoped by the project the caller was already granted."""
from django.db.models import FloatField, OuterRef, QuerySet, Subquery, Value

from annotation.models import Project, Response
from annotation.selectors import project_get_for_admin
from config.errors import NotFoundError
from training.models import ModelVersion, ResponseScore, TrainingRun


def champion_for(project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, status=ModelVersion.Status.CHAMPION).first()


def responses_with_scores(project: Project, version: ModelVersion | None) -> QuerySet:
    """Every response of ``project`` annotated with ``score`` from ``version`` (None if unscored). One query."""
    responses = Response.objects.filter(prompt__project=project).select_related("prompt").order_by("prompt_id", "id")
    if version is None:
        return responses.annotate(score=Value(None, output_field=FloatField()))
    return responses.annotate(
        score=Subquery(
            ResponseScore.objects.filter(response=OuterRef("pk"), model_version=version).values("score")[:1]
        )
    )


def model_versions_for(project: Project) -> QuerySet:
    return ModelVersion.objects.filter(project=project).order_by("-version")


def training_runs_for(project: Project) -> QuerySet:
    return TrainingRun.objects.filter(project=project).select_related("model_version").order_by("-id")


def model_version_get_for_admin(*, user, version_id: int) -> ModelVersion:
    """The version if ``user`` administers its project; NotFoundError otherwise."""
    version = ModelVersion.objects.select_related("project").filter(id=version_id).first()
    if version is None:
        raise NotFoundError("No such model version.")
    project_get_for_admin(user=user, project_id=version.project_id)
    return version

"""The reward model's scores of one item's responses, for the verdict annotators may see after a submit.

Registered with ``annotation.model_verdict`` (which may not import training) by
``TrainingConfig.ready``; that module decides whether the project allows the verdict and turns
the scores into positions, so this runs only for projects that reveal it.
"""
from annotation.models import Project
from training.models import ResponseScore
from training.selectors import scores_version_for


def item_response_scores(project: Project, response_ids: list[int]) -> tuple[int, dict[int, float]] | None:
    """``(version number, {response_id: score})`` from the version the Results page shows; None without one.

    That version (``scores_version_for``) is the champion once it has scored every response,
    so an annotator and the Results page never quote two versions. Two queries (three while a
    new champion is still scoring): the version, then its scores on the (response, version) key.
    Responses it has not scored are missing from the dict.
    """
    version = scores_version_for(project)
    if version is None:
        return None
    scores = dict(
        ResponseScore.objects.filter(model_version=version, response_id__in=response_ids).values_list("response_id", "score")
    )
    return version.version, scores

"""benchmarks/rescoring_load.py: its rescoring process does what a promoted champion's worker does."""
import pytest

from annotation.models import ComparisonItem
from benchmarks.rescoring_load import TINY_CHECKPOINT, child_rescore, rescorings_of
from training.ml.model import build_tiny_model
from training.models import ModelVersion, ResponseScore

pytestmark = pytest.mark.django_db


def test_each_round_promotes_a_champion_that_scores_everything_and_rewrites_the_priorities(
    project, settings, tmp_path, sent_tasks, capsys
):
    settings.MODEL_STORE_DIR = tmp_path / "models"
    build_tiny_model(settings.MODEL_STORE_DIR / TINY_CHECKPOINT)

    child_rescore(project.id, rounds=2)

    rounds = rescorings_of(capsys.readouterr().out)
    assert [(entry["version"], entry["scored"], entry["complete"]) for entry in rounds] == [(1, 6, True), (2, 6, True)]
    assert all(entry["priorities_seconds"] is not None for entry in rounds)
    versions = dict(ModelVersion.objects.filter(project=project).values_list("version", "status"))
    assert versions == {1: ModelVersion.Status.RETIRED, 2: ModelVersion.Status.CHAMPION}
    assert ResponseScore.objects.filter(model_version__project=project, model_version__version=2).count() == 6
    # The uncertainty order reads these: a random tiny model is never exactly sure of a pair.
    assert all(priority > 0 for priority in ComparisonItem.objects.filter(project=project).values_list(
        "model_priority", flat=True))

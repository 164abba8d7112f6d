import uuid

import pytest

from annotation.models import Assignment, Label
from annotation.services import label_submit
from annotation.assignment import assignment_claim_next
from training.pairs import pairs_from_ranking, project_pair_records
from training.snapshots import snapshot_read, snapshot_write


def test_pairwise_ranking_gives_one_pair_with_the_strength_margin():
    assert pairs_from_ranking([[7], [3]], strength=4) == [(7, 3, 1.0)]
    assert pairs_from_ranking([[7], [3]], strength=2) == [(7, 3, 0.25)]
    assert pairs_from_ranking([[7], [3]]) == [(7, 3, 0.0)]


def test_a_tie_gives_no_pair():
    assert pairs_from_ranking([[7, 3]]) == []


def test_ranking_gives_every_implied_pair_and_skips_tied_groups():
    # 1 > {2, 3} > 4: 1>2, 1>3, 1>4, 2>4, 3>4 (2 and 3 are tied).
    assert pairs_from_ranking([[1], [2, 3], [4]], strength=None) == [
        (1, 2, 0.0), (1, 3, 0.0), (1, 4, 0.0), (2, 4, 0.0), (3, 4, 0.0),
    ]


@pytest.mark.django_db
def test_project_pair_records_follow_the_labels(project, annotator):
    choices = ["A", "tie", "B"]
    for choice in choices:
        assignment = assignment_claim_next(project=project, annotator=annotator)
        label_submit(assignment_id=assignment.id, annotator=annotator, choice=choice, client_id=uuid.uuid4(),
                     strength=3 if choice != "tie" else None)

    records = project_pair_records(project)
    assert len(records) == 2  # the tie is left out
    for record, label in zip(records, Label.objects.exclude(is_tie=True).order_by("id"), strict=True):
        winner = label.ranking[0][0]
        assert record["chosen"] == label.item.responses.get(id=winner).text
        assert record["context"] == label.item.prompt.conversation
        assert record["prompt_id"] == str(label.item.prompt_id)
        assert (record["margin"], record["strength"]) == (0.5, 3)
    assert Assignment.objects.filter(status="submitted").count() == 3


def test_snapshot_is_content_addressed_and_verified(settings, tmp_path):
    settings.MODEL_STORE_DIR = tmp_path / "models"
    records = [{"prompt_id": "1", "context": [], "chosen": "a", "rejected": "b", "margin": 0.0, "strength": None}]
    first, second = snapshot_write(records), snapshot_write(list(records))
    assert first == second and first.pairs == 1 and len(first.sha256) == 64
    assert snapshot_read(first.path, first.sha256) == records
    with pytest.raises(ValueError, match="was modified"):
        snapshot_read(first.path, "0" * 64)

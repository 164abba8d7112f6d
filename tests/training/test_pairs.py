import uuid

import pytest

from annotation.models import Assignment, Label
from annotation.services import label_submit
from annotation.assignment import assignment_claim_next
from training.pairs import PairSpec, majority_pairs, pairs_from_ranking, project_pair_records, ties_from_ranking
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


def test_majority_vote_keeps_the_winning_direction_and_drops_even_splits():
    votes = [(1, 2, 0.5, 3, 10), (1, 2, 1.0, 4, 11), (2, 1, 0.0, 1, 12),  # 1 beats 2, two votes to one
             (3, 4, 0.0, None, 13), (4, 3, 0.0, None, 14)]                # 3 vs 4 split evenly: dropped
    assert majority_pairs(votes) == [(1, 2, 0.75, 3, 11)]


def test_ties_from_ranking_pairs_up_each_group():
    assert ties_from_ranking([[1, 2, 3], [4]]) == [(1, 2), (1, 3), (2, 3)]


@pytest.mark.django_db
def test_aggregation_exclusion_ties_and_both_bad(make_project, make_user):
    first, second, third = make_user("first"), make_user("second"), make_user("third")
    project = make_project(annotators=[first, second, third], prompts=1, labels_per_item=3)
    for user, choice in ((first, "A"), (second, "A"), (third, "B")):
        assignment = assignment_claim_next(project=project, annotator=user)
        # Same side for everyone: pin the display order so "A" means the same response.
        assignment.display_order = sorted(assignment.display_order)
        assignment.save()
        label_submit(assignment_id=assignment.id, annotator=user, choice=choice, client_id=uuid.uuid4())

    assert len(project_pair_records(project)) == 3
    majority = project_pair_records(project, PairSpec(aggregation="majority"))
    assert [(r["chosen"], r["rejected"]) for r in majority] == [("A good helpful answer 0.", "A bad rude answer 0.")]
    without_first = project_pair_records(project, PairSpec(aggregation="majority", excluded_annotator_ids=frozenset({first.id})))
    assert without_first == []  # one vote each way

    tie_project = make_project("Ties", annotators=[first], prompts=2)
    for choice in ("tie", "both_bad"):
        assignment = assignment_claim_next(project=tie_project, annotator=first)
        label_submit(assignment_id=assignment.id, annotator=first, choice=choice, client_id=uuid.uuid4())
    assert project_pair_records(tie_project) == []
    tied = project_pair_records(tie_project, PairSpec(train_on_ties=True))
    assert [record["tie"] for record in tied] == [True]  # both-bad never becomes a pair


def test_incremental_pairs_are_new_ones_plus_a_seeded_replay_sample():
    from training.ml.data import PreferencePair
    from training.pipeline import incremental_training_pairs

    pairs = [PreferencePair(prompt_id=str(i), context=(), chosen=f"c{i}", rejected=f"r{i}") for i in range(10)]
    label_ids = list(range(1, 11))
    chosen = incremental_training_pairs(pairs, label_ids, after_label_id=8, replay_ratio=1.5, seed=3)
    assert chosen[:2] == pairs[8:]  # labels 9 and 10 are new
    assert len(chosen) == 2 + 3 and set(chosen[2:]) <= set(pairs[:8])
    assert chosen == incremental_training_pairs(pairs, label_ids, after_label_id=8, replay_ratio=1.5, seed=3)

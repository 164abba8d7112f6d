import math
import uuid

import pytest

from annotation.models import Assignment, Label
from annotation.services import label_submit
from annotation.assignment import assignment_claim_next
from training.pairs import (
    STRENGTH_MARGIN, PairSpec, Vote, aggregate_votes, pairs_from_ranking, project_pair_records, ties_from_ranking,
)
from tests.labelling import label_in_order
from training.snapshots import snapshot_read, snapshot_write


def test_pairwise_ranking_gives_one_pair_with_the_strength_margin():
    assert pairs_from_ranking([[7], [3]], strength=4) == [(7, 3, 1.0)]
    assert pairs_from_ranking([[7], [3]], strength=2) == [(7, 3, 0.25)]
    assert pairs_from_ranking([[7], [3]]) == [(7, 3, 0.0)]


def test_every_strength_has_a_margin_growing_with_it():
    margins = [STRENGTH_MARGIN[strength] for strength in sorted(Label.Strength)]
    assert len(margins) == len(Label.Strength) and margins == sorted(margins)
    assert STRENGTH_MARGIN[None] == 0.0


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
    votes = [Vote(1, 2, 0.5, 3, 10), Vote(1, 2, 1.0, 4, 11), Vote(2, 1, 0.0, 1, 12),  # 1 beats 2, 2 to 1
             Vote(3, 4, 0.0, None, 13), Vote(4, 3, 0.0, None, 14)]  # 3 vs 4 split evenly: dropped
    assert aggregate_votes(votes) == [Vote(1, 2, 0.75, 3, 11, confidence=1.0)]


def test_ties_from_ranking_pairs_up_each_group():
    assert ties_from_ranking([[1, 2, 3], [4]]) == [(1, 2), (1, 3), (2, 3)]


@pytest.mark.django_db
def test_aggregation_exclusion_ties_and_both_bad(make_project, make_user):
    first, second, third = make_user("first"), make_user("second"), make_user("third")
    project = make_project(annotators=[first, second, third], prompts=1, labels_per_item=3)
    for user, choice in ((first, "A"), (second, "A"), (third, "B")):
        label_in_order(project, user, [choice])

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


def test_weighted_vote_lets_a_reliable_annotator_outweigh_two_weak_ones():
    strong, weak = math.log(0.95 / 0.05), math.log(0.6 / 0.4)
    weights = {1: strong, 2: weak, 3: weak}
    votes = [Vote(10, 20, 0.0, None, 100, annotator_id=1),
             Vote(20, 10, 0.0, None, 101, annotator_id=2),
             Vote(20, 10, 0.0, None, 102, annotator_id=3)]
    assert [(v.chosen, v.rejected) for v in aggregate_votes(votes)] == [(20, 10)]  # majority: two to one
    [kept] = aggregate_votes(votes, weights)
    assert (kept.chosen, kept.rejected, kept.label_id) == (10, 20, 100)
    # The posterior that 10 is better: sigmoid(strong - 2 * weak).
    assert kept.confidence == pytest.approx(1 / (1 + math.exp(2 * weak - strong)))


def test_weighted_vote_drops_pairs_judged_only_by_annotators_at_chance():
    assert aggregate_votes([Vote(1, 2, 0.0, None, 5, annotator_id=9)], {9: 0.0}) == []


@pytest.mark.django_db
def test_weighted_aggregation_carries_each_pair_s_confidence(make_project, make_user):
    from annotation.quality import project_annotator_accuracies, vote_weight

    first, second, third = make_user("first"), make_user("second"), make_user("third")
    project = make_project(annotators=[first, second, third], prompts=6, labels_per_item=3)
    for user, choices in ((first, "AAAAAA"), (second, "AAAAAA"), (third, "AAABBB")):
        label_in_order(project, user, choices)

    weighted = project_pair_records(project, PairSpec(aggregation="weighted"))
    assert len(weighted) == 6 and all(record["chosen"].startswith("A good") for record in weighted)
    accuracy = project_annotator_accuracies(project_id=project.id)
    agreeing_all = 2 * vote_weight(accuracy[first.id]) + vote_weight(accuracy[third.id])
    outvoting_third = 2 * vote_weight(accuracy[first.id]) - vote_weight(accuracy[third.id])
    # Ordered by newest agreeing label: items 4-6 (second's labels), then 1-3 (third's).
    expected = [1 / (1 + math.exp(-outvoting_third))] * 3 + [1 / (1 + math.exp(-agreeing_all))] * 3
    assert [record["confidence"] for record in weighted] == pytest.approx(expected)
    # Majority agrees on the winners but is sure of every one of them.
    majority = project_pair_records(project, PairSpec(aggregation="majority"))
    assert [r["chosen"] for r in majority] == [r["chosen"] for r in weighted]
    assert {r["confidence"] for r in majority} == {1.0}


@pytest.mark.django_db
def test_weighted_aggregation_without_estimates_is_the_majority_vote(project, annotator):
    for choice in ("A", "B"):
        assignment = assignment_claim_next(project=project, annotator=annotator)
        label_submit(assignment_id=assignment.id, annotator=annotator, choice=choice, client_id=uuid.uuid4())
    # One label per item: nobody can be compared with anybody.
    weighted = project_pair_records(project, PairSpec(aggregation="weighted"))
    assert weighted == project_pair_records(project, PairSpec(aggregation="majority"))
    assert [record["confidence"] for record in weighted] == [1.0, 1.0]


def test_ratings_give_each_criterion_its_own_pairs(make_project, make_user):
    """Criteria that disagree give pairs in opposite directions; equal ratings are ties; both bad still rates."""
    annotator = make_user("rater")
    project = make_project(annotators=[annotator], prompts=3)
    project.criteria = [{"key": "helpfulness", "label": "Helpfulness", "scale": 5},
                        {"key": "harmlessness", "label": "Harmlessness", "scale": 5}]
    project.save(update_fields=["criteria"])
    votes = [  # (choice, ratings of A, ratings of B)
        ("A", {"helpfulness": 5, "harmlessness": 1}, {"helpfulness": 2, "harmlessness": 4}),
        ("both_bad", {"helpfulness": 3, "harmlessness": 2}, {"helpfulness": 1, "harmlessness": 2}),
        ("B", {"helpfulness": 4}, {}),  # only one response rated: no helpfulness pair
    ]
    for choice, rated_a, rated_b in votes:
        assignment = assignment_claim_next(project=project, annotator=annotator)
        label_submit(assignment_id=assignment.id, annotator=annotator, choice=choice, client_id=uuid.uuid4(),
                     ratings={"A": rated_a, "B": rated_b})
    labels = list(Label.objects.filter(item__project=project).order_by("id"))
    shown = [label.display_order for label in labels]  # response ids at A and B

    assert len(project_pair_records(project)) == 2  # overall only, as before: "A" and "B"
    records = project_pair_records(project, criteria=("helpfulness", "harmlessness"))
    by_head = {}
    for record in records:
        by_head.setdefault(record.get("criterion"), []).append((record["label_id"], record["chosen_id"], record["rejected_id"]))
    assert by_head[None] == [(labels[0].id, shown[0][0], shown[0][1]), (labels[2].id, shown[2][1], shown[2][0])]
    # Label 1 rates A more helpful but less harmless; the both-bad label 2 still ranks helpfulness.
    assert by_head["helpfulness"] == [(labels[0].id, shown[0][0], shown[0][1]), (labels[1].id, shown[1][0], shown[1][1])]
    assert by_head["harmlessness"] == [(labels[0].id, shown[0][1], shown[0][0])]  # 2 = 2 is a tie: left out
    with_ties = project_pair_records(project, PairSpec(train_on_ties=True), criteria=("harmlessness",))
    assert [(r.get("criterion"), r["tie"]) for r in with_ties if r["label_id"] == labels[1].id] == [("harmlessness", True)]
    assert all("criterion" not in record for record in records[:1])

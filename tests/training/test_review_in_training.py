"""Reviews in training data: rejected labels give no pairs, corrected ones train on their correction."""
import pytest

from annotation.review import label_review
from training.pairs import PairSpec, iter_pair_records, project_pair_records
from tests.console.review_fixtures import submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(admin_user):
    return admin_user


@pytest.fixture
def labelled(make_project, make_user):
    users = [make_user("a1"), make_user("a2")]
    project = make_project("Train", annotators=users, prompts=1, labels_per_item=2)
    good_first = submit(project, users[0], choice="A", strength=4)  # A = model-good (lower id)
    also_good = submit(project, users[1], choice="A")
    return project, good_first, also_good


def pairs_by_label(project, spec=PairSpec()):
    return {(record["label_id"], record["chosen"], record["margin"]) for record in project_pair_records(project, spec)}


def test_rejected_labels_leave_training_pairs_and_pair_exports(labelled, reviewer):
    project, first, second = labelled
    assert {record["label_id"] for record in project_pair_records(project)} == {first.id, second.id}
    label_review(label_id=first.id, reviewer=reviewer, decision="reject", reason="spam")
    assert {record["label_id"] for record in project_pair_records(project)} == {second.id}
    assert {record["label_id"] for record in iter_pair_records(project)} == {second.id}
    label_review(label_id=first.id, reviewer=reviewer, decision="revert")
    assert {record["label_id"] for record in project_pair_records(project)} == {first.id, second.id}


def test_corrected_labels_train_on_the_correction_without_the_annotators_strength(labelled, reviewer):
    project, first, second = labelled
    label_review(label_id=first.id, reviewer=reviewer, decision="correct", reason="B is right",
                 corrected_ranking=[["B"], ["A"]])
    records = {record["label_id"]: record for record in project_pair_records(project)}
    assert records[first.id]["chosen_id"] == first.display_order[1]
    assert records[first.id]["rejected_id"] == first.display_order[0]
    assert records[first.id]["strength"] is None and records[first.id]["margin"] == 0.0
    assert records[second.id]["chosen_id"] == second.display_order[0]


def test_majority_counts_the_correction(labelled, reviewer):
    project, first, second = labelled
    for label in (first, second):
        label_review(label_id=label.id, reviewer=reviewer, decision="correct", reason="B",
                     corrected_ranking=[["B"], ["A"]])
    [pair] = project_pair_records(project, PairSpec(aggregation="majority"))
    assert pair["chosen_id"] == first.display_order[1] and pair["votes"] == 2


def test_a_corrected_both_bad_label_gives_its_correction(make_project, make_user, reviewer):
    user = make_user("solo")
    project = make_project("BothBad", annotators=[user], prompts=1)
    label = submit(project, user, choice="both_bad")
    assert project_pair_records(project) == []
    label_review(label_id=label.id, reviewer=reviewer, decision="correct", reason="A is fine",
                 corrected_ranking=[["A"], ["B"]])
    [pair] = project_pair_records(project)
    assert pair["chosen_id"] == label.display_order[0]

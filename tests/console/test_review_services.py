"""annotation.review: decisions on labels and what they do to counts, claims, tallies and integrity."""
import pytest

from annotation import review
from annotation.assignment import assignment_claim_next
from annotation.integrity import integrity_check
from annotation.models import Assignment, ComparisonItem, Label, LabelReview, Project, ProjectProgress
from annotation.services import label_delete, label_undo
from annotation.tallies import agreement_counts
from config.errors import ConflictError, DomainError, NotFoundError
from tests.console.review_fixtures import assert_counters_exact, counters, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair_project(make_project, crew, reviewer):
    """Two labels wanted per item; ann1 and ann2 label the first item, so it is finished."""
    project = make_project("Review", annotators=crew, prompts=2, labels_per_item=2)
    project.reviewers.add(reviewer)
    return project


def first_item_labels(project, crew):
    return submit(project, crew[0], choice="A"), submit(project, crew[1], choice="B")


def test_reject_reopens_the_item_and_keeps_every_counter_exact(pair_project, crew, reviewer):
    first, second = first_item_labels(pair_project, crew)
    item = ComparisonItem.objects.get(id=first.item_id)
    assert item.label_count == 2
    unfinished_before = counters(pair_project)[0]

    label, entry = review.label_review(label_id=second.id, reviewer=reviewer, decision="reject", reason="Clicked blindly")

    assert label.review_status == Label.ReviewStatus.REJECTED and entry.decision == "reject"
    item.refresh_from_db()
    assert item.label_count == 1
    assert counters(pair_project)[0] == unfinished_before + 1
    assignment = Assignment.objects.get(label=second)
    assert assignment.status == Assignment.Status.SKIPPED
    assert_counters_exact(pair_project)
    assert integrity_check(project=pair_project).clean


def test_a_rejected_item_goes_to_another_annotator_not_its_author(pair_project, crew, reviewer):
    first, second = first_item_labels(pair_project, crew)
    review.label_review(label_id=second.id, reviewer=reviewer, decision="reject", reason="spam")

    # ann2 (the author) and ann1 already judged the item: neither is dealt it again.
    for user in crew[:2]:
        lease = assignment_claim_next(project=pair_project, annotator=user)
        assert lease is None or lease.item_id != first.item_id
    lease = assignment_claim_next(project=pair_project, annotator=crew[2])
    assert lease.item_id == first.item_id
    assert_counters_exact(pair_project)


def test_revert_counts_the_label_again_even_past_the_wanted_number(pair_project, crew, reviewer):
    first, second = first_item_labels(pair_project, crew)
    review.label_review(label_id=second.id, reviewer=reviewer, decision="reject", reason="spam")
    third = submit(pair_project, crew[2], choice="A")
    assert third.item_id == first.item_id

    label, entry = review.label_review(label_id=second.id, reviewer=reviewer, decision="revert")

    assert label.review_status == Label.ReviewStatus.UNREVIEWED and entry.decision == "revert"
    assert ComparisonItem.objects.get(id=first.item_id).label_count == 3  # more than wanted: allowed
    assert Assignment.objects.get(label=second).status == Assignment.Status.SUBMITTED
    assert_counters_exact(pair_project)
    assert integrity_check(project=pair_project).clean


def test_reject_then_revert_restores_the_counters(pair_project, crew, reviewer):
    first, second = first_item_labels(pair_project, crew)
    before = counters(pair_project)
    review.label_review(label_id=first.id, reviewer=reviewer, decision="reject", reason="no")
    assert counters(pair_project) != before
    review.label_review(label_id=first.id, reviewer=reviewer, decision="revert")
    assert counters(pair_project) == before
    assert ComparisonItem.objects.get(id=first.item_id).label_count == 2


def test_a_repeated_decision_writes_nothing(pair_project, crew, reviewer):
    first, second = first_item_labels(pair_project, crew)
    review.label_review(label_id=first.id, reviewer=reviewer, decision="reject", reason="no")
    label, entry = review.label_review(label_id=first.id, reviewer=reviewer, decision="reject", reason="no")
    assert entry is None
    assert LabelReview.objects.filter(label=first).count() == 1
    assert ComparisonItem.objects.get(id=first.item_id).label_count == 1
    _, accepted = review.label_review(label_id=second.id, reviewer=reviewer, decision="accept")
    _, again = review.label_review(label_id=second.id, reviewer=reviewer, decision="accept")
    assert accepted is not None and again is None
    _, reverted = review.label_review(label_id=second.id, reviewer=reviewer, decision="revert")
    _, again = review.label_review(label_id=second.id, reviewer=reviewer, decision="revert")
    assert reverted is not None and again is None


def test_accepting_a_rejected_label_counts_it_again(pair_project, crew, reviewer):
    first, _ = first_item_labels(pair_project, crew)
    review.label_review(label_id=first.id, reviewer=reviewer, decision="reject", reason="no")
    review.label_review(label_id=first.id, reviewer=reviewer, decision="accept")
    assert ComparisonItem.objects.get(id=first.item_id).label_count == 2
    assert_counters_exact(pair_project)


def test_correct_stores_the_ranking_as_response_ids(pair_project, crew, reviewer):
    first, _ = first_item_labels(pair_project, crew)  # first: "A" (the lower id) better
    left, right = first.display_order
    label, entry = review.label_review(
        label_id=first.id, reviewer=reviewer, decision="correct", reason="B is right", corrected_ranking=[["B"], ["A"]]
    )
    assert label.review_status == Label.ReviewStatus.CORRECTED
    assert label.corrected_ranking == entry.corrected_ranking == [[right], [left]]
    assert ComparisonItem.objects.get(id=first.item_id).label_count == 2  # a correction still counts
    _, again = review.label_review(
        label_id=first.id, reviewer=reviewer, decision="correct", reason="B is right", corrected_ranking=[["B"], ["A"]]
    )
    assert again is None
    label, _ = review.label_review(label_id=first.id, reviewer=reviewer, decision="revert")
    assert label.corrected_ranking is None


@pytest.mark.parametrize(
    ("decision", "reason", "ranking", "field"),
    [
        ("reject", "", None, "reason"),
        ("reject", "   ", None, "reason"),
        ("correct", "", [["B"], ["A"]], "reason"),
        ("correct", "why", None, "corrected_ranking"),
        ("correct", "why", [["A"], ["B"]], "corrected_ranking"),  # what the annotator said
        ("correct", "why", [["A"], ["Z"]], "corrected_ranking"),
        ("correct", "why", [["A"]], "corrected_ranking"),
        ("correct", "why", [["A", "B"]], "corrected_ranking"),
        ("correct", "why", [["A"], ["A"]], "corrected_ranking"),
        ("correct", "why", "B>A", "corrected_ranking"),
        ("accept", "", [["B"], ["A"]], "corrected_ranking"),
        ("approve", "", None, "decision"),
        ("reject", "x" * 2001, None, "reason"),
    ],
)
def test_bad_decisions_name_the_field_and_change_nothing(pair_project, crew, reviewer, decision, reason, ranking, field):
    first, _ = first_item_labels(pair_project, crew)
    with pytest.raises(DomainError) as caught:
        review.label_review(label_id=first.id, reviewer=reviewer, decision=decision, reason=reason, corrected_ranking=ranking)
    assert field in caught.value.fields
    first.refresh_from_db()
    assert first.review_status == Label.ReviewStatus.UNREVIEWED
    assert not LabelReview.objects.exists()


def test_only_the_projects_reviewers_and_admins_decide(pair_project, crew, reviewer, make_user, make_project, admin_user):
    first, _ = first_item_labels(pair_project, crew)
    other_reviewer = make_user("other-rev")
    make_project("Elsewhere", prompts=1).reviewers.add(other_reviewer)
    for outsider in (other_reviewer, crew[0]):
        with pytest.raises(NotFoundError):
            review.label_review(label_id=first.id, reviewer=outsider, decision="accept")
    _, entry = review.label_review(label_id=first.id, reviewer=admin_user, decision="accept")
    assert entry.reviewer == admin_user


def test_an_archived_project_is_read_only(pair_project, crew, reviewer):
    first, _ = first_item_labels(pair_project, crew)
    Project.objects.filter(id=pair_project.id).update(status=Project.Status.ARCHIVED)
    with pytest.raises(ConflictError):
        review.label_review(label_id=first.id, reviewer=reviewer, decision="reject", reason="late")


def test_a_reviewed_label_cannot_be_undone(pair_project, crew, reviewer):
    first, _ = first_item_labels(pair_project, crew)
    review.label_review(label_id=first.id, reviewer=reviewer, decision="reject", reason="no")
    with pytest.raises(ConflictError):
        label_undo(label_id=first.id, annotator=crew[0])
    assert ComparisonItem.objects.get(id=first.item_id).label_count == 1


def test_deleting_a_rejected_label_keeps_the_count(pair_project, crew, reviewer):
    first, second = first_item_labels(pair_project, crew)
    review.label_review(label_id=first.id, reviewer=reviewer, decision="reject", reason="no")
    label_delete(label_id=first.id)
    assert ComparisonItem.objects.get(id=second.item_id).label_count == 1
    assert_counters_exact(pair_project)


def test_rejected_labels_leave_the_agreement_tallies(pair_project, crew, reviewer):
    first, second = first_item_labels(pair_project, crew)
    assert agreement_counts(project_id=pair_project.id).labels[crew[1].id] == 1
    review.label_review(label_id=second.id, reviewer=reviewer, decision="reject", reason="no")
    counts = agreement_counts(project_id=pair_project.id)
    assert counts.labels.get(crew[1].id, 0) == 0
    assert not counts.pairs.get((min(crew[0].id, crew[1].id), max(crew[0].id, crew[1].id)), [0, 0])[1]
    review.label_review(label_id=second.id, reviewer=reviewer, decision="revert")
    assert agreement_counts(project_id=pair_project.id).labels[crew[1].id] == 1


def test_a_settled_tally_changes_in_place_on_reject_and_on_revert(pair_project, crew, reviewer):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.models import LabelTally
    from annotation.tallies import label_tallies_rebuild, settle_age

    first, second = first_item_labels(pair_project, crew)
    Label.objects.update(created_at=timezone.now() - settle_age() - timedelta(minutes=1))
    label_tallies_rebuild(project=pair_project)
    agreement = LabelTally.objects.get(project=pair_project, kind="agreement")
    assert agreement.folded == 2 and len(agreement.counts["pairs"]) == 1
    review.label_review(label_id=second.id, reviewer=reviewer, decision="reject", reason="no")
    agreement.refresh_from_db()
    assert not agreement.stale and agreement.folded == 1
    assert agreement.counts["pairs"] == [] and dict(agreement.counts["labels"]) == {crew[0].id: 1}
    assert agreement_counts(project_id=pair_project.id).labels.get(crew[1].id, 0) == 0
    review.label_review(label_id=second.id, reviewer=reviewer, decision="revert")
    agreement.refresh_from_db()
    assert not agreement.stale and agreement.folded == 2 and len(agreement.counts["pairs"]) == 1
    assert agreement_counts(project_id=pair_project.id).labels[crew[1].id] == 1


# ------------------------------------------------------------------ the majority rule (pure)


@pytest.mark.parametrize(
    ("ranking", "others", "disagrees"),
    [
        ([[1], [2]], [[[2], [1]], [[2], [1]]], True),
        ([[1], [2]], [[[1], [2]], [[2], [1]], [[1], [2]]], False),
        ([[1], [2]], [[[2], [1]], [[1], [2]]], False),  # an even split is no majority
        ([[1], [2]], [], False),
        ([[1, 2]], [[[1], [2]]], True),  # a tie against a preference
        ([[1], [2, 3]], [[[1], [2], [3]]], True),  # the 2-3 tie disagrees
        ([[3], [1]], [[[1], [2]]], False),  # no shared pair
    ],
)
def test_disagrees_with_majority(ranking, others, disagrees):
    assert review.disagrees_with_majority(ranking, others) is disagrees


@pytest.mark.parametrize("seed", range(5))
def test_an_items_disagreeing_labels_in_one_pass_are_the_rules_label_by_label(seed):
    import random

    rng = random.Random(seed)
    for _ in range(400):
        responses = list(range(1, rng.choice([2, 2, 3, 4]) + 1))
        labels = []
        for label_id in range(rng.randint(1, 6)):
            shown = rng.sample(responses, rng.choice([len(responses), max(2, len(responses) - 1)]))
            groups, ranking = rng.randint(1, len(shown)), []
            for index, response in enumerate(shown):  # cut the shown order into groups: ties where one holds two
                if not ranking or (len(ranking) < groups and rng.random() < 0.6) or index == 0:
                    ranking.append([response])
                else:
                    ranking[-1].append(response)
            labels.append((label_id, ranking))
        one_pass = review.item_disagreeing_label_ids(labels)
        label_by_label = [
            label_id for label_id, ranking in labels
            if review.disagrees_with_majority(ranking, [other for other_id, other in labels if other_id != label_id])
        ]
        assert one_pass == label_by_label, labels


def test_rejecting_and_reverting_a_label_on_a_gold_item_leaves_the_counters_exact(pair_project, crew, reviewer):
    """Gold items are never unfinished work (annotation.gold), so a reject must not reopen one."""
    from annotation.gold import item_gold_set

    first, second = first_item_labels(pair_project, crew)
    item = ComparisonItem.objects.get(id=first.item_id)
    first_response, second_response = item.slots.order_by("slot").values_list("response_id", flat=True)
    item_gold_set(item=item, ranking=[[first_response], [second_response]])
    before = counters(pair_project)

    review.label_review(label_id=second.id, reviewer=reviewer, decision="reject", reason="Wrong on gold")
    assert counters(pair_project)[0] == before[0]
    assert_counters_exact(pair_project)
    review.label_review(label_id=second.id, reviewer=reviewer, decision="revert")
    assert_counters_exact(pair_project)

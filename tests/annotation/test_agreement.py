import pytest

from annotation.agreement import agreement_rate, project_agreement, verdicts
from tests.labelling import label_in_order


def test_verdicts_cover_every_pair_with_winner_or_tie():
    assert verdicts([[1], [2, 3]]) == {frozenset({1, 2}): 1, frozenset({1, 3}): 1, frozenset({2, 3}): "tie"}


def test_agreement_rate_counts_matching_verdicts_on_shared_pairs():
    same, flipped, tie = [[1], [2]], [[2], [1]], [[1, 2]]
    # item 1: three labels -> 3 label pairs, one agreeing (same/same); item 2: one pair, disagreeing.
    assert agreement_rate([[same, same, flipped], [tie, same]]) == (1 / 4, 4)
    assert agreement_rate([[same]]) == (None, 0)


@pytest.mark.django_db
def test_project_agreement_over_all_or_some_prompts(make_project, make_user):
    users = [make_user(f"u{i}") for i in range(3)]
    project = make_project(annotators=users, prompts=2, labels_per_item=3)
    for user, choices in zip(users, (["A", "A"], ["A", "B"], ["both_bad", "A"]), strict=True):
        label_in_order(project, user, choices)

    # Prompt 1: u0 A, u1 A (u2 both-bad is left out) -> 1/1. Prompt 2: A, B, A -> 1 of 3 pairs agree.
    assert project_agreement(project_id=project.id) == {"annotator_agreement": 2 / 4, "agreement_comparisons": 4}
    first_prompt = project.prompts.order_by("id").first().id
    assert project_agreement(project_id=project.id, prompt_ids={first_prompt})["annotator_agreement"] == 1.0


@pytest.mark.django_db
def test_labels_a_reviewer_rejected_leave_the_agreement(make_project, make_user, admin_user):
    from annotation.agreement import item_ids_below_agreement
    from annotation.models import Label
    from annotation.review import label_review

    users = [make_user(f"u{i}") for i in range(3)]
    project = make_project(annotators=users, prompts=1, labels_per_item=3)
    for user, choice in zip(users, ["A", "A", "B"], strict=True):
        label_in_order(project, user, [choice])
    assert project_agreement(project_id=project.id) == {"annotator_agreement": 1 / 3, "agreement_comparisons": 3}
    item_id = project.items.get().id
    assert item_ids_below_agreement(project_id=project.id, threshold=0.5) == {item_id}

    dissent = Label.objects.get(annotator=users[2])
    label_review(label_id=dissent.id, reviewer=admin_user, decision="reject", reason="did not read the prompt")
    assert project_agreement(project_id=project.id) == {"annotator_agreement": 1.0, "agreement_comparisons": 1}
    assert item_ids_below_agreement(project_id=project.id, threshold=0.5) == set()

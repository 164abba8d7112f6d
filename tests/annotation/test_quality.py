import math

import pytest

from annotation.quality import (
    AgreementCount,
    annotator_agreement_counts,
    estimated_accuracy,
    pool_accuracy,
    project_annotator_quality,
    vote_weight,
)
from tests.labelling import label_in_order

SAME, FLIPPED, TIE = [[1], [2]], [[2], [1]], [[1, 2]]


def test_each_comparison_counts_for_both_annotators():
    counts = annotator_agreement_counts([
        [(1, SAME), (2, SAME), (3, FLIPPED)],  # 1-2 agree, 1-3 and 2-3 do not
        [(1, TIE), (3, TIE)],  # a shared tie is agreement
    ])
    assert counts == {
        1: AgreementCount(agreements=2, comparisons=3),
        2: AgreementCount(agreements=1, comparisons=2),
        3: AgreementCount(agreements=1, comparisons=3),
    }


def test_pool_accuracy_inverts_the_agreement_of_two_equally_good_annotators():
    # Two annotators right 90 % of the time agree 0.9^2 + 0.1^2 = 82 % of the time.
    assert pool_accuracy(0.82) == pytest.approx(0.9)
    assert pool_accuracy(0.5) is None  # chance agreement: no signal
    assert pool_accuracy(None) is None


def test_estimated_accuracy_shrinks_toward_the_pool_and_stays_in_bounds():
    pool_rate = 0.82  # pool accuracy 0.9
    # Never compared: exactly the pool's accuracy.
    assert estimated_accuracy(AgreementCount(0, 0), pool_rate) == pytest.approx(0.9)
    # Agrees 20 times in 30: rate (20 + 8.2) / 40 = 0.705 -> (0.705 - 0.1) / 0.8
    assert estimated_accuracy(AgreementCount(20, 30), pool_rate) == pytest.approx(0.605 / 0.8)
    # Always disagreeing: below chance, floored at 0.5 (zero weight).
    assert estimated_accuracy(AgreementCount(0, 1000), pool_rate) == 0.5
    # Agreeing more than a pool at 0.9 allows would mean over 1: capped, so no vote is infinitely sure.
    assert estimated_accuracy(AgreementCount(30, 30), pool_rate) == 0.99
    assert estimated_accuracy(AgreementCount(5, 5), 0.4) is None


def test_vote_weight_is_the_log_odds_of_being_right():
    assert vote_weight(0.5) == 0
    assert vote_weight(0.75) == pytest.approx(math.log(3))


@pytest.mark.django_db
def test_project_annotator_quality_ranks_the_dissenter_lowest(make_project, make_user):
    first, second, third = make_user("first"), make_user("second"), make_user("third")
    project = make_project(annotators=[first, second, third], prompts=6, labels_per_item=3)
    label_in_order(project, first, ["A"] * 6)
    label_in_order(project, second, ["A"] * 6)
    label_in_order(project, third, ["A", "A", "A", "B", "B", "B"])

    quality = project_annotator_quality(project_id=project.id)
    assert (quality["agreement_rate"], quality["comparisons"]) == (pytest.approx(2 / 3), 18)
    rows = {row["username"]: row for row in quality["annotators"]}
    # Label pairs per item: 3. Items 1-3 all agree, items 4-6 only first-second: A = 12 / 18.
    pool = (1 + math.sqrt(2 * (2 / 3) - 1)) / 2
    assert quality["pool_accuracy"] == pytest.approx(pool)
    first_rate = (9 + 10 * 2 / 3) / (12 + 10)  # 9 of 12 comparisons agreed
    third_rate = (6 + 10 * 2 / 3) / (12 + 10)  # 6 of 12
    assert rows["first"]["labels"] == 6 and rows["first"]["comparisons"] == 12
    assert rows["first"]["agreement_rate"] == pytest.approx(0.75)
    assert rows["third"]["agreement_rate"] == pytest.approx(0.5)
    assert rows["first"]["accuracy"] == pytest.approx((first_rate - 1 + pool) / (2 * pool - 1))
    assert rows["second"]["accuracy"] == rows["first"]["accuracy"]
    assert rows["third"]["accuracy"] == pytest.approx((third_rate - 1 + pool) / (2 * pool - 1))
    assert rows["third"]["accuracy"] < rows["first"]["accuracy"]

    # Left out of the pool, the dissenter has no row, and the other two agree perfectly.
    without = project_annotator_quality(project_id=project.id, excluded_annotator_ids=[third.id])["annotators"]
    assert [row["username"] for row in without] == ["first", "second"]
    assert all(row["agreement_rate"] == 1.0 for row in without)


@pytest.mark.django_db
def test_single_labelled_projects_have_no_estimate(make_project, make_user):
    solo = make_user("solo")
    project = make_project(annotators=[solo], prompts=2)
    label_in_order(project, solo, ["A", "B"])
    quality = project_annotator_quality(project_id=project.id)
    assert (quality["agreement_rate"], quality["comparisons"], quality["pool_accuracy"]) == (None, 0, None)
    [row] = quality["annotators"]
    assert row == {"annotator_id": solo.id, "username": "solo", "labels": 2, "comparisons": 0,
                   "agreement_rate": None, "accuracy": None}


@pytest.mark.django_db
def test_admins_read_annotator_quality_over_the_api(api_client_for, admin_user, make_project, make_user,
                                                    django_assert_max_num_queries):
    users = [make_user(f"u{index}") for index in range(3)]
    project = make_project(annotators=users, prompts=4, labels_per_item=3)
    for user, choices in zip(users, ("AAAA", "AAAA", "AABB"), strict=True):
        label_in_order(project, user, choices)

    client = api_client_for(admin_user)
    with django_assert_max_num_queries(6):  # access, labels, usernames: not one query per annotator
        body = client.get(f"/api/projects/{project.id}/annotator-quality/").json()
    assert body == project_annotator_quality(project_id=project.id)
    assert [row["username"] for row in body["annotators"]] == ["u0", "u1", "u2"]
    assert body["annotators"][0]["accuracy"] > body["annotators"][2]["accuracy"]

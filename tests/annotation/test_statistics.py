"""annotation.statistics: Krippendorff's alpha, position bias and speed, on hand-checked numbers."""
import math
import time
import uuid

import numpy as np
import pytest

from annotation import statistics
from annotation.assignment import assignment_claim_next
from annotation.services import label_submit
from tests.labelling import label_in_order

# The krippendorff package's own published examples (its docstring; Krippendorff 2011, p. 8).
PACKAGE_VALUE_COUNTS = [
    [1, 0, 0, 0], [0, 0, 0, 0], [0, 2, 0, 0], [2, 0, 0, 0], [0, 0, 2, 0], [0, 0, 2, 1], [0, 0, 0, 3],
    [1, 0, 1, 0], [0, 2, 0, 0], [2, 0, 0, 0], [2, 0, 0, 0], [0, 0, 2, 0], [0, 0, 2, 0], [0, 0, 0, 0], [0, 0, 1, 1],
]
ORDINAL_RELIABILITY = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
]


def test_alpha_matches_the_packages_published_nominal_example():
    assert statistics.alpha_from_value_counts(PACKAGE_VALUE_COUNTS, domain=(1, 2, 3, 4), level="nominal") == pytest.approx(
        0.691358, abs=1e-6
    )


def test_alpha_matches_the_packages_published_ordinal_example():
    domain = (1, 2, 3, 4, 5)
    counts = [
        [sum(1 for coder in ORDINAL_RELIABILITY if coder[unit] == value) for value in domain]
        for unit in range(len(ORDINAL_RELIABILITY[0]))
    ]
    assert statistics.alpha_from_value_counts(counts, domain=domain, level="ordinal") == pytest.approx(0.815, abs=5e-4)


def test_nominal_alpha_of_three_items_by_hand():
    # Item 1: both say 1 beats 2 (value 0, 0). Item 2: one says 3, one says 4 (0, 2). Item 3: both tie (1, 1).
    # Coincidences o00 = 2, o11 = 2, o02 = o20 = 1; n0 = 3, n1 = 2, n2 = 1, n = 6.
    # alpha = 1 - (n - 1) * sum(o_ck, c != k) / sum(n_c n_k, c != k) = 1 - 5 * 2 / 22 = 6 / 11.
    labels = [
        (1, [[1], [2]], 2), (1, [[1], [2]], 2),
        (2, [[3], [4]], 3), (2, [[4], [3]], 3),
        (3, [[5, 6]], None), (3, [[5, 6]], None),
    ]
    alphas = statistics.krippendorff_alphas(labels)
    assert alphas["nominal"] == pytest.approx(6 / 11)
    assert alphas["units"] == 3
    # Ordinal over signed strength: the same units as +2 +2 | +3 -3 | 0 0, which the package computes as:
    import krippendorff

    expected = krippendorff.alpha(
        reliability_data=[[2, 3, 0], [2, -3, 0]], value_domain=list(range(-4, 5)), level_of_measurement="ordinal"
    )
    assert alphas["ordinal"] == pytest.approx(expected)


def test_alpha_is_none_without_two_verdicts_on_a_pair_or_without_any_disagreement_possible():
    assert statistics.krippendorff_alphas([(1, [[1], [2]], 1)])["nominal"] is None
    assert statistics.krippendorff_alphas([(1, [[1], [2]], 1), (1, [[1], [2]], 1)])["nominal"] is None
    assert statistics.krippendorff_alphas([])["ordinal"] is None


def test_a_ranking_counts_every_pair_it_covers_and_a_win_without_strength_has_no_ordinal_value():
    values = statistics.pair_values([[3], [1, 2]], None)
    assert values == {(1, 3): (2, None), (2, 3): (2, None), (1, 2): (1, 0)}
    assert statistics.pair_values([[1], [2]], 4) == {(1, 2): (0, 4)}
    assert statistics.pair_values([[2], [1]], 1) == {(1, 2): (2, -1)}


@pytest.mark.parametrize(
    ("successes", "trials", "expected"),
    [
        (9, 10, 22 / 1024),  # 2 * (C(10,0) + C(10,1)) / 2^10
        (1, 10, 22 / 1024),
        (5, 10, 1.0),
        (0, 6, 2 / 64),
        (3, 3, 2 / 8),
        (60, 100, 2 * sum(math.comb(100, i) for i in range(41)) / 2**100),  # exact integers
    ],
)
def test_binomial_p_value_by_hand(successes, trials, expected):
    assert statistics.binomial_two_sided_p(successes, trials) == pytest.approx(expected, rel=1e-9)


def test_binomial_p_value_is_none_without_trials_and_fast_for_a_million():
    assert statistics.binomial_two_sided_p(0, 0) is None
    started = time.perf_counter()
    assert statistics.binomial_two_sided_p(500_000, 1_000_000) == 1.0
    tiny = statistics.binomial_two_sided_p(510_000, 1_000_000)
    assert 0 <= tiny < 1e-50
    assert time.perf_counter() - started < 1.0


def test_reading_time_rule():
    assert statistics.reading_seconds(250) == 60
    assert statistics.reading_seconds(100) == pytest.approx(24)
    assert statistics.reading_seconds(5) == statistics.MIN_READING_SECONDS


@pytest.mark.django_db
def test_position_bias_counts_the_left_choices_of_each_annotator(make_project, make_user):
    ann, other = make_user("lefty"), make_user("fair")
    project = make_project(annotators=[ann, other], prompts=8)
    label_in_order(project, ann, ["A", "A", "A", "B", "tie", "both_bad"])  # pinned order: A is the left
    label_in_order(project, other, ["A", "B"])
    counts = statistics.position_counts(project=project)
    assert counts[ann.id].as_dict() == {"left": 3, "decisive": 4, "left_share": 0.75, "p_value": pytest.approx(10 / 16)}
    assert (counts[other.id].left, counts[other.id].decisive) == (1, 2)
    assert statistics.project_position_bias(project=project, counts=counts)["left"] == 4


@pytest.mark.django_db
def test_speed_outliers_judge_timed_labels_against_reading_time(make_project, make_user):
    ann = make_user("quick")
    project = make_project(annotators=[ann], prompts=3)
    for seconds in (0.5, 100.0, 0.0):  # too fast, fine, untimed
        assignment = assignment_claim_next(project=project, annotator=ann)
        label_submit(assignment_id=assignment.id, annotator=ann, choice="A", client_id=uuid.uuid4(), seconds_spent=seconds)
    assert statistics.speed_outliers(project=project) == {ann.id: {"timed": 2, "too_fast": 1}}


@pytest.mark.django_db
def test_project_alpha_reads_the_items_labelled_twice(make_project, make_user):
    first, second = make_user("one"), make_user("two")
    project = make_project(annotators=[first, second], prompts=3, labels_per_item=2)
    label_in_order(project, first, ["A", "A", "tie"])
    label_in_order(project, second, ["A", "B", "tie"])
    alphas = statistics.project_alpha(project_id=project.id)
    assert alphas["items"] == 3 and alphas["units"] == 3
    assert alphas["nominal"] == pytest.approx(6 / 11)  # the hand-checked case above, from real labels
    assert alphas["ordinal"] is None  # no label gave a strength, and ties alone cannot disagree

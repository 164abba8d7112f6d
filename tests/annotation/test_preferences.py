import itertools

import pytest

from annotation.preferences import TIE, pairwise_ranking, preferred_pairs, tied_pairs, verdicts


def test_a_pairwise_winner_is_preferred_to_the_other():
    assert preferred_pairs([[7], [3]]) == [(7, 3)]
    assert tied_pairs([[7], [3]]) == []
    assert verdicts([[7], [3]]) == {frozenset({3, 7}): 7}


def test_a_pairwise_tie_implies_no_preference():
    assert preferred_pairs([[7, 3]]) == []
    assert tied_pairs([[7, 3]]) == [(7, 3)]
    assert verdicts([[7, 3]]) == {frozenset({3, 7}): TIE}


def test_a_ranking_implies_every_pair_across_groups_and_ties_within_them():
    # 1 > {2, 3} > 4
    ranking = [[1], [2, 3], [4]]
    assert preferred_pairs(ranking) == [(1, 2), (1, 3), (1, 4), (2, 4), (3, 4)]
    assert tied_pairs(ranking) == [(2, 3)]
    assert verdicts(ranking) == {
        frozenset({1, 2}): 1, frozenset({1, 3}): 1, frozenset({1, 4}): 1,
        frozenset({2, 4}): 2, frozenset({3, 4}): 3, frozenset({2, 3}): TIE,
    }


@pytest.mark.parametrize("ranking", [[[1], [2]], [[1, 2]], [[5], [1, 2, 3], [4]], [[4], [3], [2], [1]], [[1, 2, 3, 4]]])
def test_every_pair_of_ranked_responses_is_either_a_preference_or_a_tie_exactly_once(ranking):
    responses = [response for group in ranking for response in group]
    covered = [frozenset(pair) for pair in preferred_pairs(ranking) + tied_pairs(ranking)]
    assert sorted(covered, key=sorted) == sorted(map(frozenset, itertools.combinations(responses, 2)), key=sorted)
    assert len(verdicts(ranking)) == len(covered)


def test_verdicts_do_not_depend_on_the_order_responses_were_shown_in():
    # Two annotators saw 1 and 2 in opposite orders and both preferred 2.
    assert verdicts(pairwise_ranking(left=1, right=2, winner=2)) == verdicts(pairwise_ranking(left=2, right=1, winner=2))


def test_pairwise_ranking_puts_the_winner_first_or_both_in_one_group():
    assert pairwise_ranking(left=10, right=20, winner=10) == [[10], [20]]
    assert pairwise_ranking(left=10, right=20, winner=20) == [[20], [10]]
    assert pairwise_ranking(left=10, right=20, winner=None) == [[10, 20]]
    with pytest.raises(ValueError, match="neither"):
        pairwise_ranking(left=10, right=20, winner=30)

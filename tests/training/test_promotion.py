"""The promotion gate on constructed per-pair outcomes where the right answer is known."""
import pytest

from training.promotion import Outcome, paired_difference, promotion_decision


def decide(challenger, champion, *, tolerance=0.0, min_pairs=50, when_insufficient="keep"):
    return promotion_decision(
        challenger=challenger, champion=champion, tolerance=tolerance, min_pairs=min_pairs,
        when_insufficient=when_insufficient,
    )


def test_a_clearly_better_challenger_is_promoted():
    # 200 shared pairs: both right on 120, challenger alone right on 40, champion alone on 5.
    challenger = [1.0] * 120 + [1.0] * 40 + [0.0] * 5 + [0.0] * 35
    champion = [1.0] * 120 + [0.0] * 40 + [1.0] * 5 + [0.0] * 35
    decision = decide(challenger, champion)
    assert decision.promote and decision.outcome == Outcome.BETTER
    assert decision.difference == pytest.approx(35 / 200)
    assert decision.difference_ci[0] > 0 and "same 200 pairs" in decision.reason


def test_an_equal_challenger_is_not_promoted():
    # Same accuracy (0.7), disagreeing on 40 pairs half each way: no evidence either way.
    challenger = [1.0] * 120 + [1.0] * 20 + [0.0] * 20 + [0.0] * 40
    champion = [1.0] * 120 + [0.0] * 20 + [1.0] * 20 + [0.0] * 40
    decision = decide(challenger, champion)
    assert not decision.promote and decision.outcome == Outcome.NOT_BETTER
    assert decision.difference == 0 and decision.difference_ci[0] < 0 < decision.difference_ci[1]


def test_identical_models_are_not_promoted_without_tolerance_but_are_with_it():
    same = [1.0] * 60 + [0.0] * 40
    assert not decide(same, same).promote
    assert decide(same, same, tolerance=0.02).promote  # non-inferiority: shown not worse by 2 points


def test_a_slightly_better_but_unproven_challenger_is_not_promoted():
    # +2 points on 100 pairs (4 vs 2 discordant): not evidence.
    challenger = [1.0] * 70 + [1.0] * 4 + [0.0] * 2 + [0.0] * 24
    champion = [1.0] * 70 + [0.0] * 4 + [1.0] * 2 + [0.0] * 24
    decision = decide(challenger, champion)
    assert decision.difference == pytest.approx(0.02) and not decision.promote


def test_too_few_pairs_says_not_enough_evaluation_data_and_follows_the_policy():
    better = [1.0, 1.0, 1.0]
    worse = [0.0, 0.0, 1.0]
    kept = decide(better, worse, min_pairs=50)
    assert (kept.promote, kept.outcome) == (False, Outcome.INSUFFICIENT_DATA)
    assert "Not enough evaluation data: 3 held-out pairs, fewer than the 50" in kept.reason
    lenient = decide(better, worse, min_pairs=50, when_insufficient="promote_if_not_worse")
    assert (lenient.promote, lenient.outcome) == (True, Outcome.INSUFFICIENT_DATA)
    assert not decide(worse, better, min_pairs=50, when_insufficient="promote_if_not_worse").promote
    assert "promoted because its accuracy is not lower (+66.7 points)" in lenient.reason


def test_a_tolerated_drop_is_not_called_not_lower():
    """A challenger 1 of 3 pairs worse, inside a 50-point tolerance: promoted, and the reason says how."""
    worse, better = [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]
    decision = decide(worse, better, min_pairs=50, tolerance=0.5, when_insufficient="promote_if_not_worse")
    assert decision.promote
    assert "its accuracy is not lower by more than the tolerance of 50.0 points (-33.3 points)" in decision.reason
    refused = decide(worse, better, min_pairs=50, tolerance=0.2, when_insufficient="promote_if_not_worse")
    assert "not promoted: its accuracy is lower by more than the tolerance of 20.0 points (-33.3 points)" in refused.reason


def test_the_first_model_is_promoted_and_no_pairs_never_replace_a_champion():
    assert decide([1.0, 0.0], None).outcome == Outcome.FIRST_MODEL
    empty = decide([], [])
    assert (empty.promote, empty.outcome) == (False, Outcome.INSUFFICIENT_DATA)


def test_paired_difference_needs_the_same_pairs():
    with pytest.raises(ValueError):
        paired_difference([1.0, 0.0], [1.0])
    assert paired_difference([1.0, 0.5], [0.0, 0.5]) == (0.5, pytest.approx((0.5 - 0.98, 0.5 + 0.98), abs=0.01))


def test_the_decision_is_stored_as_plain_json():
    import json

    decision = decide([1.0] * 60, [0.0] * 60)
    assert json.loads(json.dumps(decision.as_dict()))["outcome"] == "better"


def test_a_criterion_head_holds_the_version_back_only_when_shown_worse():
    from training.promotion import criterion_check, with_criteria

    better = decide([1.0] * 60, [0.0] * 60)
    assert better.promote
    new_head = criterion_check(challenger=[1.0] * 5, champion=None, tolerance=0.0, min_pairs=50)
    few = criterion_check(challenger=[0.0] * 5, champion=[1.0] * 5, tolerance=0.0, min_pairs=50)
    level = criterion_check(challenger=[1.0, 0.0] * 30, champion=[0.0, 1.0] * 30, tolerance=0.0, min_pairs=50)
    worse = criterion_check(challenger=[0.0] * 60, champion=[1.0] * 60, tolerance=0.0, min_pairs=50)
    assert [c.outcome for c in (new_head, few, level, worse)] == [
        Outcome.FIRST_MODEL, Outcome.INSUFFICIENT_DATA, Outcome.NOT_WORSE, Outcome.WORSE]
    assert with_criteria(better, {"helpfulness": new_head, "style": few, "honesty": level}) == better
    held_back = with_criteria(better, {"harmlessness": worse, "honesty": level})
    assert (held_back.promote, held_back.outcome) == (False, Outcome.CRITERION_WORSE)
    assert "its harmlessness head is shown worse" in held_back.reason and "Shown worse: accuracy -100.0 points" in worse.reason
    rejected = decide([0.0] * 60, [1.0] * 60)
    assert with_criteria(rejected, {"harmlessness": worse}) == rejected  # already not promoted: its own reason

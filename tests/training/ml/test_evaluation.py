import json
import math

import pytest

from training.ml.data import PreferencePair
from training.ml.evaluation import evaluate_reward_model, preference_metrics
from training.ml.scoring import score_responses


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_metrics_match_hand_computation():
    # differences d = 2, -1, 0, 3
    metrics = preference_metrics([2.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, -3.0], [1, 2, None, 1])
    assert metrics["pairs"] == 4
    assert metrics["accuracy"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert metrics["loss"] == pytest.approx(
        (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(1)) + math.log(2) + math.log(1 + math.exp(-3))) / 4
    )
    assert metrics["mean_margin"] == pytest.approx(1.0)
    # Confidence in the predicted winner lands each pair in its own bin:
    # sigmoid(2)=0.88 (bin 8, right), sigmoid(1)=0.73 (bin 7, wrong),
    # 0.5 (bin 5, a tie scores 0.5), sigmoid(3)=0.95 (bin 9, right).
    expected_ece = ((1 - sigmoid(2)) + sigmoid(1) + 0 + (1 - sigmoid(3))) / 4
    assert metrics["ece"] == pytest.approx(expected_ece)
    assert metrics["accuracy_by_strength"] == {"1": 1.0, "2": 0.0}


def test_ece_averages_within_a_bin():
    # both pairs have confidence sigmoid(1) = 0.731 (bin 7); one right, one wrong
    metrics = preference_metrics([1.0, 0.0], [0.0, 1.0])
    assert metrics["ece"] == pytest.approx(abs(0.5 - sigmoid(1)))
    assert metrics["accuracy_by_strength"] == {}


def test_no_pairs_gives_empty_metrics():
    metrics = preference_metrics([], [])
    assert metrics["pairs"] == 0 and metrics["accuracy"] is None
    assert metrics["tie_pairs"] == 0 and metrics["tie_mean_abs_gap"] is None


def test_ties_are_reported_apart_from_the_preferences():
    # differences d = 2, -1 (preferences), then ties at -0.5 and 1.5, and 3 (preference)
    chosen, rejected = [2.0, 0.0, 1.0, 2.0, 0.0], [0.0, 1.0, 1.5, 0.5, -3.0]
    strengths = [1, 2, None, None, 1]
    ties = [False, False, True, True, False]
    metrics = preference_metrics(chosen, rejected, strengths, ties=ties)
    without = preference_metrics([2.0, 0.0, 0.0], [0.0, 1.0, -3.0], [1, 2, 1])
    assert metrics["tie_pairs"] == 2
    assert metrics["tie_mean_abs_gap"] == pytest.approx((0.5 + 1.5) / 2)
    assert metrics["pairs"] == 3
    for key in ("accuracy", "loss", "ece", "mean_margin", "accuracy_by_strength"):
        assert metrics[key] == without[key]
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert without["tie_pairs"] == 0 and without["tie_mean_abs_gap"] is None


def test_only_ties_leaves_the_preference_metrics_empty():
    metrics = preference_metrics([1.0], [0.0], ties=[True])
    assert metrics["pairs"] == 0 and metrics["accuracy"] is None and metrics["accuracy_by_strength"] == {}
    assert metrics["tie_pairs"] == 1 and metrics["tie_mean_abs_gap"] == pytest.approx(1.0)


def test_evaluate_reward_model_scores_both_sides(tiny_model, tiny_config):
    model, tokenizer = tiny_model
    pairs = [
        PreferencePair("a", ({"role": "user", "content": "hi"},), "good answer", "bad answer", strength=2),
        PreferencePair("b", (), "kind poem", "rude poem", strength=None),
        PreferencePair("b", (), "kind poem", "clear poem", tie=True),
    ]
    metrics = evaluate_reward_model(model, tokenizer, pairs, tiny_config)
    json.dumps(metrics)
    scores = score_responses(
        model,
        tokenizer,
        [(p.context, p.chosen) for p in pairs] + [(p.context, p.rejected) for p in pairs],
        max_length=tiny_config.max_length,
    )
    expected = preference_metrics(scores[:3], scores[3:], [2, None, None], ties=[False, False, True])
    assert metrics.keys() == expected.keys()
    assert metrics["pairs"] == 2 and metrics["tie_pairs"] == 1
    for key in ("pairs", "accuracy", "accuracy_by_strength", "tie_pairs"):
        assert metrics[key] == expected[key]
    for key in ("loss", "ece", "mean_margin", "tie_mean_abs_gap"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-6)

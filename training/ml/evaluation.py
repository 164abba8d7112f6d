"""Held-out metrics of a reward model on preference pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from training.ml.config import TrainConfig
from training.ml.intervals import wilson_interval
from training.ml.data import PreferencePair, pair_heads
from training.ml.pooling import head_index
from training.ml.scoring import score_response_heads

ECE_BINS = 10


def evaluate_reward_model(
    model: Any, tokenizer: Any, pairs: Sequence[PreferencePair], config: TrainConfig
) -> dict[str, Any]:
    """Score both sides of every pair and summarise (see ``preference_metrics``)."""
    return preference_metrics_of(reward_differences(model, tokenizer, pairs, config), pairs)


def reward_differences(
    model: Any, tokenizer: Any, pairs: Sequence[PreferencePair], config: TrainConfig
) -> list[float]:
    """r_chosen - r_rejected for every pair, in order, each read from the pair's own head
    (the overall reward, or its criterion's; ``model.head_index``).

    Uses ``config.max_length`` and scores ``2 * config.batch_size`` texts per
    forward pass.
    """
    columns = pair_heads(pairs, head_index(model))
    items = [(pair.context, pair.chosen) for pair in pairs]
    items += [(pair.context, pair.rejected) for pair in pairs]
    scores = score_response_heads(
        model, tokenizer, items, max_length=config.max_length, batch_size=2 * config.batch_size
    )
    n = len(pairs)
    return [chosen[column] - rejected[column] for column, chosen, rejected in zip(columns, scores[:n], scores[n:])]


def preference_metrics_of(differences: Sequence[float], pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """``preference_metrics`` from reward differences, one per pair (JSON-serialisable;
    with no preference pairs every preference metric is None)."""
    return preference_metrics(
        list(differences), [0.0] * len(differences), [pair.strength for pair in pairs], ties=[pair.tie for pair in pairs]
    )


def pair_outcomes(differences: Sequence[float], pairs: Sequence[PreferencePair]) -> list[float]:
    """Per preference pair (ties left out, they have no right answer): 1 if the
    model ranks the chosen response higher, 0.5 for equal rewards, 0 otherwise.
    The promotion gate compares two models pair by pair on these."""
    return [_outcome(d) for d, pair in zip(differences, pairs, strict=True) if not pair.tie]


def _outcome(difference: float) -> float:
    return 1.0 if difference > 0 else 0.5 if difference == 0 else 0.0


def preference_metrics(
    chosen_scores: Sequence[float],
    rejected_scores: Sequence[float],
    strengths: Sequence[int | None] | None = None,
    *,
    ties: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """Metrics of reward differences d = r_chosen - r_rejected, pair by pair.

    Pairs flagged in ``ties`` (judged equally good) have no right answer, so
    every metric below but the last two is over the other pairs only, and
    ``pairs`` counts those.

    accuracy: share with d > 0, equal scores (d == 0) counting 0.5.
    accuracy_ci: its Wilson 95 % interval [low, high] over ``pairs``.
    loss: mean Bradley-Terry loss -log sigmoid(d), without margin.
    ece: expected calibration error of sigmoid(d) read as P(chosen wins):
      each pair's confidence is the probability given to its predicted winner,
      max(p, 1 - p); pairs fall into 10 equal-width bins over [0, 1] of that
      confidence, and ece = sum over bins of (n_bin / n) * |accuracy_bin -
      mean confidence_bin|.
    mean_margin: mean of d.
    accuracy_by_strength: {str(strength): accuracy} over pairs whose strength is known.
    tie_pairs: how many tie pairs there were.
    tie_mean_abs_gap: mean |d| over the tie pairs (0 is ideal); None without ties.
    """
    if len(chosen_scores) != len(rejected_scores):
        raise ValueError("chosen_scores and rejected_scores differ in length")
    total = len(chosen_scores)
    strengths = list(strengths) if strengths is not None else [None] * total
    ties = list(ties) if ties is not None else [False] * total
    if not len(strengths) == len(ties) == total:
        raise ValueError("strengths and ties must have one entry per pair")
    all_differences = [c - r for c, r in zip(chosen_scores, rejected_scores)]
    tie_gaps = [abs(d) for d, tie in zip(all_differences, ties) if tie]
    tie_metrics = {
        "tie_pairs": len(tie_gaps),
        "tie_mean_abs_gap": sum(tie_gaps) / len(tie_gaps) if tie_gaps else None,
    }
    differences = [d for d, tie in zip(all_differences, ties) if not tie]
    strengths = [strength for strength, tie in zip(strengths, ties) if not tie]
    n = len(differences)
    if not n:
        return {"pairs": 0, "accuracy": None, "accuracy_ci": None, "loss": None, "ece": None, "mean_margin": None,
                "accuracy_by_strength": {}, **tie_metrics}
    correct = [_outcome(d) for d in differences]

    bins: list[list[tuple[float, float]]] = [[] for _ in range(ECE_BINS)]
    for d, outcome in zip(differences, correct):
        confidence = max(_sigmoid(d), 1.0 - _sigmoid(d))
        bins[min(int(confidence * ECE_BINS), ECE_BINS - 1)].append((confidence, outcome))
    ece = 0.0
    for members in bins:
        if members:
            mean_confidence = sum(c for c, _ in members) / len(members)
            accuracy = sum(o for _, o in members) / len(members)
            ece += len(members) / n * abs(accuracy - mean_confidence)

    by_strength: dict[str, list[float]] = {}
    for strength, outcome in zip(strengths, correct):
        if strength is not None:
            by_strength.setdefault(str(strength), []).append(outcome)
    return {
        "pairs": n,
        "accuracy": sum(correct) / n,
        "accuracy_ci": list(accuracy_interval(correct)),
        "loss": sum(_softplus(-d) for d in differences) / n,
        "ece": ece,
        "mean_margin": sum(differences) / n,
        "accuracy_by_strength": {
            key: sum(values) / len(values) for key, values in sorted(by_strength.items())
        },
        **tie_metrics,
    }


def accuracy_interval(outcomes: Sequence[float]) -> tuple[float, float] | None:
    """Wilson 95 % interval (``training.ml.intervals``) for an accuracy over ``outcomes`` (each 0, 0.5 or 1); None when empty."""
    n = len(outcomes)
    if not n:
        return None
    return wilson_interval(sum(outcomes) / n, n)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _softplus(x: float) -> float:
    """log(1 + e^x) without overflow."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))

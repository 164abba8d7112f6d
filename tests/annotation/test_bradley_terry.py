"""Bradley–Terry ratings recover known strengths, and their bootstrap intervals mean what they say."""
import time

import numpy as np
import pytest

import random
from collections import Counter

from annotation.bradley_terry import ANCHOR, SCALE, bradley_terry, bradley_terry_from_counts, fit_log_strengths

TRUE_THETA = np.array([-1.2, -0.6, -0.2, 0.1, 0.5, 1.0])  # log-strengths, natural scale
NAMES = [f"model-{index}" for index in range(len(TRUE_THETA))]


def simulate(rng, n, theta=TRUE_THETA, tie_rate=0.0):
    """``n`` comparisons between random distinct models, outcomes drawn from the BT model."""
    k = len(theta)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    p_a = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))
    outcome = (rng.random(n) < p_a).astype(float)
    outcome[rng.random(n) < tie_rate] = 0.5
    return [(NAMES[i], NAMES[j], float(y)) for i, j, y in zip(a, b, outcome)]


def test_fitted_order_equals_the_true_order():
    result = bradley_terry(simulate(np.random.default_rng(7), 4000), bootstrap_rounds=100)
    order = [result.models[i] for i in np.argsort(result.ratings)]
    assert order == NAMES
    assert result.ratings.mean() == pytest.approx(ANCHOR)
    # On the Elo scale the gaps are the true log-strength gaps times 400/ln 10, within noise.
    fitted_theta = (result.ratings - ANCHOR) / SCALE
    assert np.abs(fitted_theta - (TRUE_THETA - TRUE_THETA.mean())).max() < 0.15
    assert np.all(result.ci_low < result.ratings) and np.all(result.ratings < result.ci_high)
    assert result.comparisons.sum() == 2 * 4000


def test_intervals_of_differences_cover_the_truth_at_about_the_stated_rate():
    rng = np.random.default_rng(2024)
    reference = NAMES[0]
    true_gap = {name: SCALE * (TRUE_THETA[i] - TRUE_THETA[0]) for i, name in enumerate(NAMES)}
    covered = total = 0
    for simulation in range(40):
        result = bradley_terry(simulate(rng, 1500), bootstrap_rounds=200, seed=simulation)
        for name in NAMES[1:]:
            low, high = result.difference_interval(name, reference)
            covered += low <= true_gap[name] <= high
            total += 1
    assert covered / total >= 0.85, f"95 % intervals covered the truth {covered}/{total} times"


def test_a_tie_counts_as_half_a_win_each():
    result = bradley_terry([("x", "y", 0.5)] * 10, bootstrap_rounds=0)
    assert result.ratings == pytest.approx([ANCHOR, ANCHOR])
    assert list(result.ties) == [10, 10] and list(result.wins) == [0, 0]
    assert result.win_rate() == {"x": {"y": 0.5}, "y": {"x": 0.5}}

    # One win plus two ties is the same evidence as two wins and one loss.
    with_ties = bradley_terry([("x", "y", 1.0), ("x", "y", 0.5), ("y", "x", 0.5)], bootstrap_rounds=0)
    decisive = bradley_terry([("x", "y", 1.0), ("x", "y", 1.0), ("y", "x", 1.0)], bootstrap_rounds=0)
    assert with_ties.ratings == pytest.approx(decisive.ratings)
    assert with_ties.win_rate()["x"]["y"] == pytest.approx(2 / 3)


def test_a_model_that_always_wins_stays_finite():
    comparisons = [("champ", "a", 1.0)] * 30 + [("b", "champ", 0.0)] * 30 + [("a", "b", 1.0), ("b", "a", 1.0)]
    result = bradley_terry(comparisons, bootstrap_rounds=100)
    assert np.all(np.isfinite(result.ratings)) and np.all(np.isfinite(result.samples))
    champ = result.index("champ")
    assert result.ratings[champ] == result.ratings.max()
    assert (result.wins[champ], result.losses[champ]) == (60, 0)
    assert result.ratings.mean() == pytest.approx(ANCHOR)


def test_bootstrap_is_seeded_and_fast():
    comparisons = simulate(np.random.default_rng(1), 10_000)
    started = time.perf_counter()
    first = bradley_terry(comparisons, bootstrap_rounds=100, seed=3)
    elapsed = time.perf_counter() - started
    again = bradley_terry(comparisons, bootstrap_rounds=100, seed=3)
    assert np.array_equal(first.samples, again.samples)
    assert elapsed < 0.5, f"100 rounds on 10,000 comparisons took {elapsed:.2f}s"


def test_batched_fit_matches_one_at_a_time():
    rng = np.random.default_rng(0)
    wins = rng.integers(0, 20, size=(5, 4, 4)).astype(float)
    wins[:, np.arange(4), np.arange(4)] = 0
    batched = fit_log_strengths(wins)
    assert batched == pytest.approx(np.stack([fit_log_strengths(w) for w in wins]))


def test_bad_input_is_rejected_and_nothing_gives_an_empty_board():
    with pytest.raises(ValueError):
        bradley_terry([("x", "x", 1.0)])
    with pytest.raises(ValueError):
        bradley_terry([("x", "y", 0.7)])
    empty = bradley_terry([])
    assert empty.models == [] and empty.win_rate() == {}


def test_counts_give_the_same_fit_as_the_comparisons_they_count():
    comparisons = simulate(np.random.default_rng(5), 3000, tie_rate=0.2)
    cells = list(Counter(comparisons).items())
    random.Random(0).shuffle(cells)  # however the counts were gathered
    from_counts = bradley_terry_from_counts(dict(cells), bootstrap_rounds=150, seed=9)
    from_tuples = bradley_terry(comparisons, bootstrap_rounds=150, seed=9)
    assert from_counts.models == from_tuples.models == NAMES
    for name in ("ratings", "ci_low", "ci_high", "samples", "wins", "losses", "ties", "win_matrix"):
        assert np.array_equal(getattr(from_counts, name), getattr(from_tuples, name)), name

    # And both are the fit of the win matrix tallied one comparison at a time.
    lookup = {name: index for index, name in enumerate(NAMES)}
    wins = np.zeros((len(NAMES), len(NAMES)))
    decided = np.zeros((len(NAMES), 3), dtype=int)  # wins, losses, ties
    for a, b, y in comparisons:
        i, j = lookup[a], lookup[b]
        wins[i, j] += y
        wins[j, i] += 1 - y
        if y == 0.5:
            decided[i, 2] += 1
            decided[j, 2] += 1
        else:
            winner, loser = (i, j) if y == 1 else (j, i)
            decided[winner, 0] += 1
            decided[loser, 1] += 1
    assert from_counts.ratings == pytest.approx(ANCHOR + SCALE * fit_log_strengths(wins))
    assert np.array_equal(np.stack([from_counts.wins, from_counts.losses, from_counts.ties], axis=1), decided)
    assert from_counts.comparisons.sum() == 2 * len(comparisons)


def test_zero_counts_are_ignored_and_bad_counts_rejected():
    assert bradley_terry_from_counts({("x", "y", 1.0): 0}).models == []
    with pytest.raises(ValueError):
        bradley_terry_from_counts({("x", "y", 1.0): 1.5})


def test_a_start_near_the_optimum_reaches_the_same_optimum():
    rng = np.random.default_rng(1)
    wins = rng.integers(0, 50, size=(6, 6)).astype(float)
    wins[np.arange(6), np.arange(6)] = 0
    optimum = fit_log_strengths(wins)
    assert fit_log_strengths(wins, start=optimum + rng.normal(0, 0.3, 6)) == pytest.approx(optimum, abs=1e-7)
    assert fit_log_strengths(wins, start=np.full(6, 5.0)) == pytest.approx(optimum, abs=1e-7)


@pytest.mark.parametrize("counts", [
    {("a", "b", 1.0): 150_000, ("a", "b", 0.0): 100_000},
    # c lost its five comparisons: only the prior holds it, in a direction rounding error steers.
    {("a", "b", 1.0): 150_000, ("a", "b", 0.0): 100_000, ("b", "c", 1.0): 5},
])
def test_a_large_board_converges_in_a_few_newton_steps(monkeypatch, counts):
    """At hundreds of thousands of comparisons the gradient's rounding error kept steps above
    ``tol``: every fit ran all 100 steps, and the leaderboard's fit took 15-25 ms instead of 2."""
    solve, solves = np.linalg.solve, []
    monkeypatch.setattr(np.linalg, "solve", lambda *args: solves.append(1) or solve(*args))
    result = bradley_terry_from_counts(Counter(counts), bootstrap_rounds=200)
    assert len(solves) < 40  # the point estimate and its 200 resamples (batched), both to convergence
    assert np.all(result.ci_low <= result.ratings) and np.all(result.ratings <= result.ci_high)

"""Bradley–Terry ratings of generating models from pairwise outcomes. Pure; numpy only, no Django.

The Chatbot Arena method: each model ``i`` has a log-strength ``theta_i`` and

    P(i beats j) = 1 / (1 + exp(-(theta_i - theta_j)))

fitted by maximum likelihood with a tiny L2 prior on ``theta`` (``prior``: a
Gaussian with precision ``prior``, i.e. a penalty ``prior / 2 * ||theta||^2``).
The prior is what keeps a model that won every comparison finite, and, because
the likelihood only sees differences, it also pins the mean of ``theta`` to 0.

Ratings are reported on the Elo scale: ``rating = 1000 + 400 / ln(10) * theta``,
so the mean rating is 1000 and a 400-point gap means 10:1 odds of winning.

A comparison is ``(model_a, model_b, outcome)``: outcome 1 means ``a`` won, 0
means ``b`` won, 0.5 is a tie, counted as half a win for each side. Callers with
many comparisons pass their counts instead (``bradley_terry_from_counts``:
``{(model_a, model_b, outcome): n}``), which is the same fit, the same seeded
bootstrap and the same result, at a cost that depends on the number of models,
not of comparisons.

Confidence intervals are 95 % percentile bootstrap intervals: the comparisons are
resampled with replacement, refitted, and the 2.5th and 97.5th percentiles taken.
Resampling ``n`` comparisons with replacement is the same as drawing a multinomial
over the distinct ``(pair, outcome)`` cells with the observed frequencies, which is
what is done: every round is then a small ``K x K`` fit, and all rounds are fitted
together with batched Newton steps.
"""
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
# numpy 2 imports these on first use: here, with the app, rather than inside the first
# leaderboard request each web process serves (about 30 ms).
import numpy.linalg  # noqa: F401
import numpy.ma  # noqa: F401 (np.percentile)
import numpy.random  # noqa: F401

SCALE = 400.0 / np.log(10.0)  # Elo points per nat of log-strength
ANCHOR = 1000.0  # the mean rating
DEFAULT_PRIOR = 1e-3  # precision of the L2 prior on theta, in units of "comparisons"
STALLED_STEP = 1e-6  # nats (under 0.001 Elo points): below it, a step that stops shrinking is rounding error
OUTCOMES = (0.0, 0.5, 1.0)


def win_probability(gap: float) -> float:
    """P(i beats j) for a log-strength (or reward) difference ``gap = theta_i - theta_j``: the logistic
    function, split by sign so ``exp`` never overflows for a large gap. Reward scores are such logits."""
    return 1 / (1 + math.exp(-gap)) if gap >= 0 else math.exp(gap) / (1 + math.exp(gap))


@dataclass
class BradleyTerryResult:
    """A fit. Arrays are indexed like ``models`` (sorted by name)."""

    models: list[str]
    ratings: np.ndarray  # (K,) Elo scale, mean 1000
    ci_low: np.ndarray  # (K,) 2.5th percentile of the bootstrap ratings
    ci_high: np.ndarray  # (K,) 97.5th percentile
    samples: np.ndarray  # (R, K) bootstrap ratings, for intervals of other quantities (differences)
    wins: np.ndarray  # (K,) outright wins
    losses: np.ndarray  # (K,)
    ties: np.ndarray  # (K,)
    comparisons: np.ndarray  # (K,) wins + losses + ties
    win_matrix: np.ndarray  # (K, K) wins of row over column, ties counted half
    count_matrix: np.ndarray  # (K, K) comparisons between row and column (symmetric)
    bootstrap_rounds: int = 0

    def index(self, model: str) -> int:
        return self.models.index(model)

    def win_rate(self) -> dict[str, dict[str, float]]:
        """Observed ``{a: {b: share of a-vs-b comparisons a won}}``, ties half; pairs never compared are absent."""
        result: dict[str, dict[str, float]] = {}
        for i, a in enumerate(self.models):
            row = {
                b: float(self.win_matrix[i, j] / self.count_matrix[i, j])
                for j, b in enumerate(self.models)
                if i != j and self.count_matrix[i, j] > 0
            }
            result[a] = row
        return result

    def difference_interval(self, model: str, reference: str, *, level: float = 0.95) -> tuple[float, float]:
        """Percentile bootstrap interval of ``rating(model) - rating(reference)``, Elo points."""
        diff = self.samples[:, self.index(model)] - self.samples[:, self.index(reference)]
        tail = (1.0 - level) / 2 * 100
        low, high = np.percentile(diff, [tail, 100 - tail])
        return float(low), float(high)


def fit_log_strengths(
    wins: np.ndarray,
    *,
    prior: float = DEFAULT_PRIOR,
    tol: float = 1e-9,
    max_iter: int = 100,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """MAP log-strengths for one or many win matrices, by damped Newton steps.

    ``wins``: (K, K) or (R, K, K), ``wins[..., i, j]`` = wins of i over j (ties half).
    Returns theta with the same leading shape, (K,) or (R, K), each row mean 0.
    ``start`` (K,): where every fit starts (default 0). The optimum is the same from anywhere;
    a start near it only saves steps, as the point estimate does for its bootstrap resamples.

    The objective sum_ij W_ij log sigma(theta_i - theta_j) - prior/2 ||theta||^2 is
    strictly concave, so Newton converges; steps are capped at 2 nats per model so a
    model that always wins walks out to its (finite, prior-bounded) optimum instead
    of overshooting.
    """
    if prior <= 0:
        raise ValueError("prior must be positive")
    single = wins.ndim == 2
    W = wins[None] if single else wins  # (R, K, K)
    R, K, _ = W.shape
    N = W + np.swapaxes(W, 1, 2)  # (R, K, K) comparisons per pair
    theta = np.zeros((R, K)) if start is None else np.tile(np.asarray(start, dtype=float) - np.mean(start), (R, 1))
    eye = np.eye(K)
    active = np.ones(R, dtype=bool)
    last_step = np.full(R, np.inf)
    for _ in range(max_iter):
        t, Wa, Na = theta[active], W[active], N[active]
        d = t[:, :, None] - t[:, None, :]  # (r, K, K) theta_i - theta_j
        p = 1.0 / (1.0 + np.exp(-d))  # P(i beats j)
        grad = (Wa - Na * p).sum(axis=2) - prior * t  # (r, K)
        curv = Na * p * (1.0 - p)  # (r, K, K)
        # Hessian of the log-posterior: off-diagonal +curv, diagonal -(row sum) - prior.
        hess = curv - eye * (curv.sum(axis=2) + prior)[:, :, None]
        step = -np.linalg.solve(hess, grad[:, :, None])[:, :, 0]  # (r, K)
        # Along (1, ..., 1) only the prior curves the objective and the exact gradient is
        # -prior * sum(theta), 0 from a centred start: a step there is rounding error.
        step -= step.mean(axis=1, keepdims=True)
        biggest = np.abs(step).max(axis=1, keepdims=True)
        step = step * np.minimum(1.0, 2.0 / np.maximum(biggest, 1e-300))
        theta[active] = t + step
        # Near the optimum Newton's steps shrink quadratically. With many comparisons the
        # gradient's rounding error (~1e-11 at 250,000) over a direction curved by little more
        # than the prior (a model with a handful of comparisons, all lost) makes steps of
        # ~1e-8 that never fall below ``tol``: such fits ran all ``max_iter`` steps. A step
        # below STALLED_STEP that stopped shrinking is that floor.
        done = (biggest[:, 0] < tol) | ((biggest[:, 0] < STALLED_STEP) & (biggest[:, 0] > 0.5 * last_step[active]))
        last_step[active] = biggest[:, 0]
        if done.all():
            break
        active_idx = np.flatnonzero(active)
        active[active_idx[done]] = False
    theta -= theta.mean(axis=1, keepdims=True)  # already ~0 at the optimum; removes round-off
    return theta[0] if single else theta


def _encode_counts(counts) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Model names (sorted) and the distinct cells: a index, b index, outcome, count.

    Cells come out in the order of their code ``(a * K + b) * 3 + 2 * outcome``, so the
    multinomial bootstrap draws the same samples whichever way the counts were gathered.
    """
    cells = [(a, b, float(y), n) for (a, b, y), n in counts.items() if n]
    if not cells:
        return [], np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0, int)
    models = sorted({a for a, _, _, _ in cells} | {b for _, b, _, _ in cells})
    lookup = {name: index for index, name in enumerate(models)}
    K = len(models)
    merged: dict[int, int] = {}
    for a_name, b_name, y, n in cells:
        if a_name == b_name:
            raise ValueError("a model cannot be compared with itself")
        if y not in OUTCOMES:
            raise ValueError("outcome must be 1 (a wins), 0 (b wins) or 0.5 (tie)")
        if n < 0 or int(n) != n:
            raise ValueError("a count must be a whole number of comparisons")
        code = (lookup[a_name] * K + lookup[b_name]) * 3 + round(y * 2)
        merged[code] = merged.get(code, 0) + int(n)
    codes = np.array(sorted(merged), dtype=np.int64)
    cell_counts = np.array([merged[code] for code in codes.tolist()], dtype=np.int64)
    cell_a, cell_b = divmod(codes // 3, K)
    return models, cell_a, cell_b, (codes % 3) / 2.0, cell_counts


def _win_matrices(counts: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, K: int) -> np.ndarray:
    """(R, K, K) win matrices from (R, C) counts of the distinct cells (a, b, y)."""
    R = counts.shape[0]
    W = np.zeros((R, K * K))
    # Each cell adds y * count to W[a, b] and (1 - y) * count to W[b, a]. Cells are few (<= 3 K^2).
    np.add.at(W.T, a * K + b, (counts * y).T)
    np.add.at(W.T, b * K + a, (counts * (1.0 - y)).T)
    return W.reshape(R, K, K)


def bradley_terry(
    comparisons,
    *,
    bootstrap_rounds: int = 200,
    seed: int = 0,
    prior: float = DEFAULT_PRIOR,
) -> BradleyTerryResult:
    """Fit ratings and bootstrap intervals from ``[(model_a, model_b, outcome), ...]``.

    The same as ``bradley_terry_from_counts`` of the tuples' counts.
    """
    return bradley_terry_from_counts(Counter(comparisons), bootstrap_rounds=bootstrap_rounds, seed=seed, prior=prior)


def bradley_terry_from_counts(
    counts,
    *,
    bootstrap_rounds: int = 200,
    seed: int = 0,
    prior: float = DEFAULT_PRIOR,
) -> BradleyTerryResult:
    """Fit ratings and bootstrap intervals from ``{(model_a, model_b, outcome): number of comparisons}``.

    Resampling the ``n`` comparisons with replacement is a multinomial draw over these
    cells with the observed frequencies, so every round is a ``K x K`` fit: the cost is
    O(K^2) per round (plus the K^3 Newton solves), however many comparisons there are.
    Deterministic for a given ``seed`` (a numpy ``Generator``). ``bootstrap_rounds``
    may be 0, in which case the intervals collapse onto the point estimate.
    """
    models, cell_a, cell_b, cell_y, cell_counts = _encode_counts(counts)
    K = len(models)
    if K == 0:
        empty = np.zeros(0)
        return BradleyTerryResult(
            models=[], ratings=empty, ci_low=empty, ci_high=empty, samples=np.zeros((bootstrap_rounds, 0)),
            wins=empty, losses=empty, ties=empty, comparisons=empty, win_matrix=np.zeros((0, 0)),
            count_matrix=np.zeros((0, 0)), bootstrap_rounds=bootstrap_rounds,
        )
    W = _win_matrices(cell_counts[None].astype(float), cell_a, cell_b, cell_y, K)[0]
    theta = fit_log_strengths(W, prior=prior)
    ratings = ANCHOR + SCALE * theta

    if bootstrap_rounds > 0:
        rng = np.random.default_rng(seed)
        n = int(cell_counts.sum())
        resampled = rng.multinomial(n, cell_counts / n, size=bootstrap_rounds)  # (R, C)
        # Each resample's optimum lies near the point estimate: Newton from there takes a few
        # steps instead of walking out from 0 (up to ~10 capped steps for a lopsided pair).
        resampled_wins = _win_matrices(resampled.astype(float), cell_a, cell_b, cell_y, K)
        samples = ANCHOR + SCALE * fit_log_strengths(resampled_wins, prior=prior, start=theta)
        ci_low, ci_high = np.percentile(samples, [2.5, 97.5], axis=0)
    else:
        samples = ratings[None].copy()
        ci_low, ci_high = ratings.copy(), ratings.copy()

    decisive = cell_y != 0.5
    a_won, b_won = decisive & (cell_y == 1), decisive & (cell_y == 0)

    def tally(index: np.ndarray, mask: np.ndarray) -> np.ndarray:  # (K,) comparisons of the masked cells per model
        return np.bincount(index[mask], weights=cell_counts[mask], minlength=K).astype(np.int64)

    wins = tally(cell_a, a_won) + tally(cell_b, b_won)
    losses = tally(cell_b, a_won) + tally(cell_a, b_won)
    ties = tally(cell_a, ~decisive) + tally(cell_b, ~decisive)
    return BradleyTerryResult(
        models=models, ratings=ratings, ci_low=ci_low, ci_high=ci_high, samples=samples,
        wins=wins, losses=losses, ties=ties, comparisons=wins + losses + ties,
        win_matrix=W, count_matrix=W + W.T, bootstrap_rounds=bootstrap_rounds,
    )

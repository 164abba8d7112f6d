"""The promotion gate: a pure rule deciding whether a challenger replaces the champion.

Both models are scored on the same evaluation pairs (the project's fixed
held-out prompts), so the comparison is *paired*: per pair, the challenger's
outcome (1 right, 0 wrong, 0.5 for equal rewards) minus the champion's. The
mean of those differences is the accuracy difference, and its 95 % interval
comes from their spread (a paired z-interval, the large-sample form of
McNemar's test). The challenger is promoted only when the whole interval lies
above ``-tolerance``: with the default tolerance 0 it must be *shown* better,
and an equal model keeps the champion serving. With fewer evaluation pairs than
``min_pairs`` no interval is trusted; the policy says what happens then.

Per-criterion heads share the version's backbone, so they are promoted together, on the
overall head's decision; each head also gets its own check (``criterion_check``) on its own
held-out pairs, which holds the version back only when that head is *shown worse* than the
champion's head of the same criterion (``with_criteria``).
"""
import math
from dataclasses import asdict, dataclass, replace
from typing import Sequence

Z_95 = 1.959963984540054


class Outcome:
    FIRST_MODEL = "first_model"
    BETTER = "better"
    NOT_BETTER = "not_better"
    INSUFFICIENT_DATA = "insufficient_data"
    # A criterion head's own check (criterion_check), and the version it held back.
    NOT_WORSE = "not_worse"
    WORSE = "worse"
    CRITERION_WORSE = "criterion_worse"


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    outcome: str
    reason: str  # one sentence for the Results page
    eval_pairs: int
    min_pairs: int
    tolerance: float
    difference: float | None = None  # challenger accuracy - champion accuracy, same pairs
    difference_ci: tuple[float, float] | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def paired_difference(challenger: Sequence[float], champion: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """Mean of per-pair outcome differences and its 95 % interval."""
    if len(challenger) != len(champion) or not challenger:
        raise ValueError("both models need outcomes on the same, non-empty list of pairs")
    n = len(challenger)
    differences = [a - b for a, b in zip(challenger, champion)]
    mean = sum(differences) / n
    variance = sum((d - mean) ** 2 for d in differences) / (n - 1) if n > 1 else 0.0
    half = Z_95 * math.sqrt(variance / n)
    return mean, (mean - half, mean + half)


def promotion_decision(
    *,
    challenger: Sequence[float],
    champion: Sequence[float] | None,
    tolerance: float,
    min_pairs: int,
    when_insufficient: str,
) -> GateDecision:
    """Decide on per-pair outcomes (``champion`` None: there is no champion yet).

    ``when_insufficient`` is a ``TrainingPolicy.WhenEvaluationInsufficient`` value:
    ``keep`` rejects the challenger, ``promote_if_not_worse`` falls back to comparing
    the point estimates.
    """
    n = len(challenger)
    common = {"eval_pairs": n, "min_pairs": min_pairs, "tolerance": tolerance}
    if champion is None:
        return GateDecision(
            promote=True, outcome=Outcome.FIRST_MODEL, reason="The first model is promoted: there is nothing to compare.",
            **common,
        )
    if n == 0:
        return GateDecision(
            promote=False, outcome=Outcome.INSUFFICIENT_DATA,
            reason="Not enough evaluation data: no held-out preference pairs; the champion keeps serving.", **common,
        )
    difference, interval = paired_difference(challenger, champion)
    measured = {**common, "difference": difference, "difference_ci": interval}
    if n < min_pairs:
        not_worse = difference >= -tolerance
        promote = when_insufficient == "promote_if_not_worse" and not_worse
        # With a tolerance, "not worse" admits a lower accuracy: say by how much.
        allowed = f" by more than the tolerance of {_points(tolerance).lstrip('+')}" if tolerance else ""
        then = (
            f"promoted because its accuracy is not lower{allowed} ({_points(difference)})" if promote
            else f"not promoted: its accuracy is lower{allowed} ({_points(difference)})"
            if when_insufficient == "promote_if_not_worse"
            else "the champion keeps serving"
        )
        return GateDecision(
            promote=promote, outcome=Outcome.INSUFFICIENT_DATA,
            reason=f"Not enough evaluation data: {n} held-out pairs, fewer than the {min_pairs} the gate needs; {then}.",
            **measured,
        )
    low, high = interval
    if low > -tolerance:
        return GateDecision(
            promote=True, outcome=Outcome.BETTER,
            reason=f"Promoted: accuracy {_points(difference)} against the champion on the same {n} pairs "
            f"(95 % interval {_points(low)} to {_points(high)}).",
            **measured,
        )
    return GateDecision(
        promote=False, outcome=Outcome.NOT_BETTER,
        reason=f"Not promoted: accuracy {_points(difference)} against the champion on the same {n} pairs "
        f"(95 % interval {_points(low)} to {_points(high)}) is not shown to be better"
        + (f" than {_points(-tolerance)}." if tolerance else "."),
        **measured,
    )


def criterion_check(
    *, challenger: Sequence[float], champion: Sequence[float] | None, tolerance: float, min_pairs: int
) -> GateDecision:
    """A criterion head's check on its held-out pairs (``champion`` None: the champion has no such head).

    ``promote`` False only when the head is shown worse: the whole 95 % interval of the paired
    difference lies below ``-tolerance``. Too few pairs, or none, hold nothing back.
    """
    n = len(challenger)
    common = {"eval_pairs": n, "min_pairs": min_pairs, "tolerance": tolerance}
    if champion is None:
        return GateDecision(promote=True, outcome=Outcome.FIRST_MODEL,
                            reason="A new head: the champion has none for this criterion.", **common)
    if n < max(min_pairs, 1):
        return GateDecision(
            promote=True, outcome=Outcome.INSUFFICIENT_DATA,
            reason=f"{n} held-out pairs, fewer than the {min_pairs} a check needs; it holds nothing back.", **common,
        )
    difference, (low, high) = paired_difference(challenger, champion)
    measured = {**common, "difference": difference, "difference_ci": (low, high)}
    span = f"{_points(difference)} against the champion's head on the same {n} pairs (95 % interval {_points(low)} to {_points(high)})"
    if high < -tolerance:
        return GateDecision(promote=False, outcome=Outcome.WORSE, reason=f"Shown worse: accuracy {span}.", **measured)
    return GateDecision(promote=True, outcome=Outcome.NOT_WORSE, reason=f"Not shown worse: accuracy {span}.", **measured)


def with_criteria(overall: GateDecision, checks: dict[str, GateDecision]) -> GateDecision:
    """The version's decision: the overall head's, unless a criterion head is shown worse."""
    worse = [key for key, check in checks.items() if not check.promote]
    if not overall.promote or not worse:
        return overall
    named = ", ".join(worse)
    return replace(
        overall, promote=False, outcome=Outcome.CRITERION_WORSE,
        reason=f"{overall.reason} Not promoted: its {named} head{'s are' if len(worse) > 1 else ' is'} shown worse "
        "than the champion's (the heads share one backbone, so they are promoted together).",
    )


def _points(value: float) -> str:
    return f"{value * 100:+.1f} points"

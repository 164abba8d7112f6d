"""Confidence intervals shared by evaluation (worker) and the pages that show its figures (web).

Pure Python, no torch: the web process imports it (see ``training/ml/__init__``).
"""
import math

Z_95 = 1.959963984540054


def wilson_interval(accuracy: float, n: int) -> tuple[float, float]:
    """Wilson 95 % interval of an accuracy measured on ``n`` pairs (``n`` > 0).

    Unlike the plain normal interval it stays inside [0, 1] and is not zero-width at 0 or
    100 %, which matters on the small held-out sets of a young project.
    """
    centre = (accuracy + Z_95**2 / (2 * n)) / (1 + Z_95**2 / n)
    half = Z_95 * math.sqrt(accuracy * (1 - accuracy) / n + Z_95**2 / (4 * n * n)) / (1 + Z_95**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)

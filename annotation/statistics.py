"""Label statistics beyond raw agreement: Krippendorff's alpha, position bias, speed outliers.

Raw agreement (``annotation.agreement``) and each annotator's estimated accuracy
(``annotation.quality``) come from the stored tallies. What is here reads labels, so every
reader is bounded: alpha reads the labels of the project's latest ``ALPHA_MAX_ITEMS`` items
labelled twice or more, speed reads the latest ``SPEED_WINDOW`` labels, and position bias is
one aggregate query that PostgreSQL answers without sending a row per label.

Units and values of alpha. A *unit* is one response pair of one item; each label covering
the pair is one *coder's value* for it (``annotation.preferences.verdicts``). With the pair
written (low id, high id):

- nominal: ``0`` the lower id won, ``1`` tie, ``2`` the higher id won;
- ordinal: the signed strength, ``+strength`` when the lower id won, ``-strength`` when the
  higher id won, ``0`` for a tie (a win without a strength is left out: ranking projects and
  API clients that send none have no ordinal value).

"Both bad" labels carry no preference and are left out of everything here, as in agreement.

Position bias is read on two-response (pairwise) labels that pick a side: the share that
picked the response shown on the left, against 0.5 with a two-sided exact binomial test.

Speed outliers: a label is too fast when its ``seconds_spent`` is under the time it takes to
read what was shown, ``max(MIN_READING_SECONDS, words / READING_WORDS_PER_MINUTE * 60)``,
words being the prompt's messages and the item's responses split on whitespace. Labels with
``seconds_spent == 0`` were not timed by their client and are not judged.
"""
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import krippendorff
import numpy as np
from django.db.models import Count, F, Q
from django.db.models.fields.json import KT

from annotation.models import ComparisonItem, ComparisonItemResponse, Label, Project
from annotation.preferences import TIE, verdicts

# Alpha reads the labels of at most this many items (the newest labelled twice or more):
# enough for a stable estimate, few enough that the page answers in well under a second.
ALPHA_MAX_ITEMS = 20_000
READING_WORDS_PER_MINUTE = 250
# Even a two-word pair needs a glance at each side and a key press.
MIN_READING_SECONDS = 3.0
SPEED_WINDOW = 5_000

NOMINAL_DOMAIN = (0, 1, 2)
STRENGTH_DOMAIN = tuple(range(-4, 5))


# --------------------------------------------------------------------------- pure rules


def pair_values(ranking: list[list[int]], strength: int | None) -> dict[tuple[int, int], tuple[int, int | None]]:
    """``{(low id, high id): (nominal value, signed strength or None)}`` for every pair the ranking covers."""
    values = {}
    for pair, winner in verdicts(ranking).items():
        low, high = sorted(pair)
        if winner == TIE:
            values[low, high] = (1, 0)
        else:
            sign = 1 if winner == low else -1
            values[low, high] = (0 if sign == 1 else 2, sign * strength if strength else None)
    return values


def alpha_from_value_counts(value_counts: list[list[int]], *, domain: tuple, level: str) -> float | None:
    """Krippendorff's alpha over units given as counts per value of ``domain``; None when undefined.

    Undefined: no unit has two values, or every value is the same (no expected disagreement).
    """
    pairable = [row for row in value_counts if sum(row) >= 2]
    if not pairable:
        return None
    if sum(1 for column in zip(*pairable, strict=True) if any(column)) < 2:
        return None
    return float(krippendorff.alpha(value_counts=np.array(pairable), value_domain=list(domain), level_of_measurement=level))


def krippendorff_alphas(labels: Iterable[tuple[int, list[list[int]], int | None]]) -> dict:
    """Nominal alpha over verdicts and ordinal alpha over signed strength, from ``(item_id, ranking, strength)``.

    Returns ``{"nominal": alpha or None, "ordinal": alpha or None, "units": n}``, ``units`` being
    the response pairs with two or more verdicts.
    """
    nominal: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(NOMINAL_DOMAIN))
    ordinal: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(STRENGTH_DOMAIN))
    for item_id, ranking, strength in labels:
        for pair, (verdict, signed) in pair_values(ranking, strength).items():
            nominal[item_id, pair][verdict] += 1
            if signed is not None:
                ordinal[item_id, pair][STRENGTH_DOMAIN.index(signed)] += 1
    return {
        "nominal": alpha_from_value_counts(list(nominal.values()), domain=NOMINAL_DOMAIN, level="nominal"),
        "ordinal": alpha_from_value_counts(list(ordinal.values()), domain=STRENGTH_DOMAIN, level="ordinal"),
        "units": sum(1 for row in nominal.values() if sum(row) >= 2),
    }


def binomial_two_sided_p(successes: int, trials: int) -> float | None:
    """Exact two-sided p-value of ``successes`` in ``trials`` against a fair coin; None without trials.

    With p = 0.5 the distribution is symmetric, so the outcomes at least as unlikely as the one
    seen are both tails beyond it: ``min(1, 2 * P(X <= min(k, n - k)))``. The tail is summed from
    its largest term down in log space, stopping once terms no longer change the sum, so a
    count of a million costs a few thousand steps, not a million big integers.
    """
    if trials <= 0:
        return None
    low = min(successes, trials - successes)
    log_term = math.lgamma(trials + 1) - math.lgamma(low + 1) - math.lgamma(trials - low + 1) - trials * math.log(2)
    term, total, index = math.exp(log_term), 0.0, low
    while index >= 0:
        total += term
        if term == 0.0 or term < total * 1e-17:
            break
        # P(index - 1) / P(index) = index / (trials - index + 1)
        term *= index / (trials - index + 1)
        index -= 1
    return min(1.0, 2 * total)


def reading_seconds(words: int) -> float:
    """Seconds needed to read ``words`` words (the speed-outlier rule in the module docstring)."""
    return max(MIN_READING_SECONDS, words / READING_WORDS_PER_MINUTE * 60)


def word_count(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------- readers


def project_alpha(*, project_id: int, max_items: int = ALPHA_MAX_ITEMS) -> dict:
    """Both alphas over the labels of the project's newest ``max_items`` items with two labels or more.

    Two queries: the item ids (the ``(project, label_count, id)`` index), then their labels.
    ``items`` in the answer says how many items that was.
    """
    item_ids = list(
        ComparisonItem.objects.filter(project_id=project_id, label_count__gte=2).order_by("-id").values_list("id", flat=True)[
            :max_items
        ]
    )
    rows = Label.objects.filter(item_id__in=item_ids, both_bad=False).values_list("item_id", "ranking", "strength")
    return {**krippendorff_alphas(rows.iterator(chunk_size=5000)), "items": len(item_ids)}


@dataclass(frozen=True)
class PositionCount:
    left: int
    decisive: int

    @property
    def share(self) -> float | None:
        return self.left / self.decisive if self.decisive else None

    @property
    def p_value(self) -> float | None:
        return binomial_two_sided_p(self.left, self.decisive)

    def as_dict(self) -> dict:
        return {"left": self.left, "decisive": self.decisive, "left_share": self.share, "p_value": self.p_value}


def position_counts(*, project: Project) -> dict[int, PositionCount]:
    """Per annotator, decisive pairwise labels and how many picked the left response. Empty for ranking projects.

    One aggregate query: the winner (``ranking[0][0]``) against the left response
    (``display_order[0]``), compared in the database.
    """
    if project.label_format != Project.LabelFormat.PAIRWISE:
        return {}
    rows = (
        Label.objects.filter(item__project=project, is_tie=False, both_bad=False)
        .annotate(winner=KT("ranking__0__0"), left_id=KT("display_order__0"))
        .values("annotator_id")
        .annotate(decisive=Count("id"), left=Count("id", filter=Q(winner=F("left_id"))))
        .order_by()
    )
    return {row["annotator_id"]: PositionCount(row["left"], row["decisive"]) for row in rows}


def project_position_bias(*, project: Project, counts: dict[int, PositionCount] | None = None) -> dict:
    counts = position_counts(project=project) if counts is None else counts
    return PositionCount(sum(c.left for c in counts.values()), sum(c.decisive for c in counts.values())).as_dict()


def _words_shown(item_ids: set[int]) -> dict[int, int]:
    """Words each item showed: its prompt's messages and its responses. Two queries."""
    words: dict[int, int] = defaultdict(int)
    for item_id, conversation in ComparisonItem.objects.filter(id__in=item_ids).values_list("id", "prompt__conversation"):
        words[item_id] += sum(word_count(str(message.get("content", ""))) for message in conversation if isinstance(message, dict))
    for item_id, text in ComparisonItemResponse.objects.filter(item_id__in=item_ids).values_list("item_id", "response__text"):
        words[item_id] += word_count(text)
    return words


def speed_outliers(*, project: Project, window: int = SPEED_WINDOW) -> dict[int, dict]:
    """Per annotator, among the project's newest ``window`` timed labels: ``{"timed": n, "too_fast": n}``."""
    labels = list(
        Label.objects.filter(item__project=project, seconds_spent__gt=0)
        .order_by("-id")
        .values_list("annotator_id", "item_id", "seconds_spent")[:window]
    )
    words = _words_shown({item_id for _, item_id, _ in labels})
    result: dict[int, dict] = defaultdict(lambda: {"timed": 0, "too_fast": 0})
    for annotator_id, item_id, seconds in labels:
        result[annotator_id]["timed"] += 1
        result[annotator_id]["too_fast"] += seconds < reading_seconds(words[item_id])
    return dict(result)

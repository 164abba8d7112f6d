"""How reliable each annotator is, read off how often they agree with the others.

The model is Dawid and Skene's "one-coin" model: annotator a gives the right
verdict on a response pair with probability q_a (their accuracy), independently
of everyone else. Two annotators then agree with probability
q_a * q_b + (1 - q_a) * (1 - q_b), so agreement, which we can count, pins down
accuracy, which we cannot see:

- the project's agreement rate A among annotators of mean accuracy q gives
  A = q^2 + (1 - q)^2, so q = (1 + sqrt(2A - 1)) / 2;
- annotator a's rate of agreeing with the others, r_a, gives
  r_a = q_a * q + (1 - q_a) * (1 - q), so q_a = (r_a - 1 + q) / (2q - 1).

r_a is shrunk toward A by ``PRIOR_COMPARISONS`` pseudo-comparisons, so an
annotator seen on a handful of pairs gets about the pool's accuracy rather than
0 or 1. Accuracies are kept within [0.5, ``MAX_ACCURACY``]: below chance an
annotator carries no usable signal (their votes get zero weight), and a cap
keeps one annotator's vote from becoming infinitely sure. Ties are verdicts like
any other (two labels agree on a pair when both tie it), as in
``annotation.agreement``. With no items labelled twice, or agreement no better
than chance, nothing can be estimated and accuracies are None.
"""
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from annotation.agreement import agreement_rate
from annotation.models import Label
from annotation.preferences import verdicts
from annotation.tallies import agreement_counts

PRIOR_COMPARISONS = 10
MAX_ACCURACY = 0.99


@dataclass(frozen=True)
class AgreementCount:
    agreements: int = 0
    comparisons: int = 0


def annotator_agreement_counts(
    labels_by_item: Iterable[list[tuple[int, list[list[int]]]]],
) -> dict[int, AgreementCount]:
    """Per annotator, how many of their verdicts matched another label's on the same response pair.

    ``labels_by_item`` gives, per item, its labels as ``(annotator_id, ranking)``.
    Every pair of labels of an item is compared on the response pairs both
    cover, and the comparison counts for both annotators.
    """
    agreements, comparisons = defaultdict(int), defaultdict(int)
    for labels in labels_by_item:
        judged = [(annotator_id, verdicts(ranking)) for annotator_id, ranking in labels]
        for (first_id, first), (second_id, second) in itertools.combinations(judged, 2):
            for pair in first.keys() & second.keys():
                same = first[pair] == second[pair]
                for annotator_id in (first_id, second_id):
                    comparisons[annotator_id] += 1
                    agreements[annotator_id] += same
    return {
        annotator_id: AgreementCount(agreements[annotator_id], comparisons[annotator_id])
        for annotator_id in comparisons
    }


def pool_accuracy(pool_rate: float | None) -> float | None:
    """Mean annotator accuracy implied by the pool's agreement rate; None when at or below chance."""
    if pool_rate is None or pool_rate <= 0.5:
        return None
    return (1 + math.sqrt(2 * pool_rate - 1)) / 2


def estimated_accuracy(count: AgreementCount, pool_rate: float | None) -> float | None:
    """q_a for one annotator, given the pool's agreement rate (see the module docstring); None without signal."""
    pool = pool_accuracy(pool_rate)
    if pool is None:
        return None
    rate = (count.agreements + PRIOR_COMPARISONS * pool_rate) / (count.comparisons + PRIOR_COMPARISONS)
    accuracy = (rate - 1 + pool) / (2 * pool - 1)
    return min(max(accuracy, 0.5), MAX_ACCURACY)


def vote_weight(accuracy: float) -> float:
    """An annotator's weight in a vote: the log-odds of being right.

    Summing these over the annotators on each side gives the log-odds that a
    side is right, given the votes (independent annotators, even prior): the
    optimal weighted majority rule (Nitzan and Paroush, 1982).
    """
    return math.log(accuracy / (1 - accuracy))


def project_annotator_accuracies(
    *, project_id: int, excluded_annotator_ids: Iterable[int] = ()
) -> dict[int, float | None]:
    """``{annotator_id: estimated accuracy or None}`` for every annotator with a preference label."""
    quality = project_annotator_quality(project_id=project_id, excluded_annotator_ids=excluded_annotator_ids)
    return {row["annotator_id"]: row["accuracy"] for row in quality["annotators"]}


def project_annotator_quality(*, project_id: int, excluded_annotator_ids: Iterable[int] = ()) -> dict:
    """The pool's agreement and one row per annotator of the project's preference labels.

    Returns ``agreement_rate`` and ``comparisons`` over the pool (as
    ``annotation.agreement``), ``pool_accuracy`` (None when it cannot be
    estimated) and ``annotators``, most labels first: ``annotator_id``,
    ``username``, ``labels``, ``comparisons`` (their verdicts compared with
    another annotator's), ``agreement_rate`` (None without comparisons) and
    ``accuracy`` (the estimate above). Excluded annotators are left out of the
    pool, so they neither get a row nor move anyone else's estimate.

    Read from the project's stored agreement tally (``annotation.tallies``): counts per
    annotator pair, so leaving annotators out is done here, on the pairs. The same result
    as ``_project_annotator_quality_from_labels``, which reads every label.
    """
    excluded = set(excluded_annotator_ids)
    tally = agreement_counts(project_id=project_id)
    label_counts = {annotator_id: n for annotator_id, n in tally.labels.items() if n and annotator_id not in excluded}
    agreements, comparisons = defaultdict(int), defaultdict(int)
    pool_agreements = pool_comparisons = 0
    for (first_id, second_id), (agreed, compared) in tally.pairs.items():
        if not compared or first_id in excluded or second_id in excluded:
            continue
        pool_agreements += agreed
        pool_comparisons += compared
        for annotator_id in (first_id, second_id):
            agreements[annotator_id] += agreed
            comparisons[annotator_id] += compared
    counts = {annotator_id: AgreementCount(agreements[annotator_id], comparisons[annotator_id]) for annotator_id in comparisons}
    pool_rate = pool_agreements / pool_comparisons if pool_comparisons else None
    return _quality(label_counts, counts, pool_rate, pool_comparisons)


def _project_annotator_quality_from_labels(*, project_id: int, excluded_annotator_ids: Iterable[int] = ()) -> dict:
    """``project_annotator_quality`` computed from every label: the reference the tally is tested against."""
    labels = (
        Label.objects.filter(item__project_id=project_id, both_bad=False)
        .exclude(review_status=Label.ReviewStatus.REJECTED)  # out of the tallies, as if deleted (annotation.review)
        .exclude(annotator_id__in=list(excluded_annotator_ids))
        .values_list("item_id", "annotator_id", "ranking")
    )
    labels_by_item: Mapping[int, list] = defaultdict(list)
    label_counts = defaultdict(int)
    for item_id, annotator_id, ranking in labels:
        labels_by_item[item_id].append((annotator_id, ranking))
        label_counts[annotator_id] += 1
    shared = [labels for labels in labels_by_item.values() if len(labels) > 1]
    counts = annotator_agreement_counts(shared)
    pool_rate, pool_comparisons = agreement_rate([ranking for _, ranking in labels] for labels in shared)
    return _quality(label_counts, counts, pool_rate, pool_comparisons)


def _quality(
    label_counts: Mapping[int, int], counts: Mapping[int, AgreementCount], pool_rate: float | None, pool_comparisons: int
) -> dict:
    usernames = dict(get_user_model().objects.filter(id__in=label_counts).values_list("id", "username"))
    rows = []
    for annotator_id, label_count in label_counts.items():
        count = counts.get(annotator_id, AgreementCount())
        rows.append({
            "annotator_id": annotator_id,
            "username": usernames[annotator_id],
            "labels": label_count,
            "comparisons": count.comparisons,
            "agreement_rate": count.agreements / count.comparisons if count.comparisons else None,
            "accuracy": estimated_accuracy(count, pool_rate),
        })
    return {
        "agreement_rate": pool_rate,
        "comparisons": pool_comparisons,
        "pool_accuracy": pool_accuracy(pool_rate),
        "annotators": sorted(rows, key=lambda row: (-row["labels"], row["username"])),
    }

"""How often annotators agree with each other: the ceiling a reward model's accuracy is read against.

Each label says, for every pair of responses it covers, which one won (or that they
tied): its ``annotation.preferences.verdicts``. Two labels of one item agree on a
response pair when they say the same. The agreement rate is agreements / comparisons
over every pair of labels of every item with at least two labels ("both bad" labels
carry no preference and are left out).
"""
import itertools
from collections import defaultdict
from collections.abc import Iterable
from operator import itemgetter

from annotation.id_sets import in_ids
from annotation.models import Label
from annotation.preferences import verdicts


def agreement_rate(rankings_by_item: Iterable[list[list[list[int]]]]) -> tuple[float | None, int]:
    """``(rate, comparisons)`` over items given as lists of their labels' rankings; rate is None with no comparisons."""
    agreements = comparisons = 0
    for rankings in rankings_by_item:
        for first, second in itertools.combinations([verdicts(r) for r in rankings], 2):
            for pair in first.keys() & second.keys():
                comparisons += 1
                agreements += first[pair] == second[pair]
    return (agreements / comparisons if comparisons else None), comparisons


def project_agreement(*, project_id: int, prompt_ids: set[int] | None = None, excluded_annotator_ids=()) -> dict:
    """Inter-annotator agreement in a project, optionally over some prompts only (e.g. the held-out ones)."""
    # A label a reviewer rejected is out of training, so out of the agreement it is compared with.
    labels = Label.objects.filter(item__project_id=project_id, both_bad=False).exclude(
        annotator_id__in=excluded_annotator_ids
    ).exclude(review_status=Label.ReviewStatus.REJECTED)
    if prompt_ids is not None:
        labels = labels.filter(in_ids("item__prompt_id", prompt_ids))
    by_item = defaultdict(list)
    for item_id, ranking in labels.values_list("item_id", "ranking"):
        by_item[item_id].append(ranking)
    rate, comparisons = agreement_rate(rankings for rankings in by_item.values() if len(rankings) > 1)
    return {"annotator_agreement": rate, "agreement_comparisons": comparisons}


def item_ids_below_agreement(
    *, project_id: int, threshold: float, item_ids: set[int] | None = None, chunk_size: int = 2000
) -> set[int]:
    """Ids of the project's items (of ``item_ids`` only, if given) whose labels agree less often than
    ``threshold`` (``agreement_rate``).

    An item counts when it has two or more labels that are not "both bad" nor rejected by a
    reviewer (every annotator's, whatever else an export filters on) and those labels share at least one response pair.
    ``(item_id, ranking)`` rows stream in item order from a chunked cursor, so one item's
    rankings are held at a time; the returned set is what grows with the project, one id per
    disagreeing item.
    """
    labels = Label.objects.filter(item__project_id=project_id)
    if item_ids is not None:
        labels = labels.filter(in_ids("item_id", item_ids))
    rows = (
        labels.filter(both_bad=False)
        .exclude(review_status=Label.ReviewStatus.REJECTED)
        .order_by("item_id")
        .values_list("item_id", "ranking")
    )
    below = set()
    for item_id, group in itertools.groupby(rows.iterator(chunk_size=chunk_size), key=itemgetter(0)):
        rankings = [ranking for _, ranking in group]
        if len(rankings) < 2:
            continue
        rate, _ = agreement_rate([rankings])
        if rate is not None and rate < threshold:
            below.add(item_id)
    return below

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
    labels = Label.objects.filter(item__project_id=project_id, both_bad=False).exclude(
        annotator_id__in=excluded_annotator_ids
    )
    if prompt_ids is not None:
        labels = labels.filter(item__prompt_id__in=prompt_ids)
    by_item = defaultdict(list)
    for item_id, ranking in labels.values_list("item_id", "ranking"):
        by_item[item_id].append(ranking)
    rate, comparisons = agreement_rate(rankings for rankings in by_item.values() if len(rankings) > 1)
    return {"annotator_agreement": rate, "agreement_comparisons": comparisons}

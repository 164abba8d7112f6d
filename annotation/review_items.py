"""The label browser's Items tab: a project's items, labelled or not, with their progress.

Reads only; the decisions on labels are ``annotation.review``'s, gold answers ``annotation.gold``'s.
"""
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, QuerySet
from django.utils import timezone

from annotation.agreement import agreement_rate, item_ids_below_agreement
from annotation.export import agreement_threshold
from annotation.id_sets import in_ids
from annotation.kept_sets import kept_ids
from annotation.models import Assignment, ComparisonItem, Label, Project
from config.errors import DomainError

# The items tab's progress filter: ordinary items still short of the labels wanted, ordinary
# items that have them, and items (gold ones too) without a label that counts.
ITEM_PROGRESS = ("open", "finished", "unlabelled")
PROMPT_FILTER_MAX_LENGTH = 200


@dataclass(frozen=True)
class ItemFilters:
    """The items tab's filters, every one optional: gold or ordinary, progress, prompt id contains,
    agreement below a threshold (as the exports' ``agreement_below``)."""

    gold: bool | None = None
    progress: str | None = None
    prompt: str | None = None
    agreement_below: float | None = None

    @classmethod
    def from_params(cls, params) -> "ItemFilters":
        """Parse query parameters; a DomainError (400) names each bad one."""
        errors: dict[str, list[str]] = {}
        gold_raw = (params.get("gold") or "").strip().lower()
        if gold_raw not in ("", "true", "false"):
            errors["gold"] = ["true or false"]
        progress = (params.get("progress") or "").strip()
        if progress and progress not in ITEM_PROGRESS:
            errors["progress"] = [f"one of {', '.join(ITEM_PROGRESS)}"]
        prompt = (params.get("prompt") or "").strip()
        if len(prompt) > PROMPT_FILTER_MAX_LENGTH or "\x00" in prompt:
            errors["prompt"] = [f"at most {PROMPT_FILTER_MAX_LENGTH} characters of text"]
        try:
            agreement_below = agreement_threshold(params.get("agreement_below"))
        except ValueError as exc:
            agreement_below, errors["agreement_below"] = None, [str(exc)]
        if errors:
            raise DomainError(f"Invalid filters: {', '.join(sorted(errors))}.", fields=errors)
        return cls(
            gold=None if not gold_raw else gold_raw == "true", progress=progress or None, prompt=prompt or None,
            agreement_below=agreement_below,
        )


def review_items(*, project: Project, filters: ItemFilters) -> QuerySet:
    """The project's items ``filters`` selects, oldest first, with their prompts.

    Every filter is a condition on the item row (or its prompt's external id, a substring scan
    of the project's prompts), but ``agreement_below``: the items whose labels agree less often
    (``annotation.agreement.item_ids_below_agreement``, a read of every ranking, then kept and
    brought up to date item by item: ``annotation.kept_sets``). Pages walk the items by id
    (``IdCursorPagination``).
    """
    items = ComparisonItem.objects.filter(project=project)
    if filters.gold is not None:
        items = items.filter(gold_ranking__isnull=not filters.gold)
    if filters.progress == "open":
        items = items.filter(gold_ranking__isnull=True, label_count__lt=project.labels_per_item)
    elif filters.progress == "finished":
        items = items.filter(gold_ranking__isnull=True, label_count__gte=project.labels_per_item)
    elif filters.progress == "unlabelled":
        items = items.filter(label_count=0)
    if filters.prompt:
        items = items.filter(prompt__external_id__icontains=filters.prompt)
    if filters.agreement_below is not None:
        threshold = filters.agreement_below
        below = kept_ids(  # the threshold is an input: one answer kept per project, the last asked
            "agreement_below", project, lambda: item_ids_below_agreement(project_id=project.id, threshold=threshold),
            inputs=(threshold,),
            compute_items=lambda item_ids: (
                item_ids_below_agreement(project_id=project.id, threshold=threshold, item_ids=item_ids), item_ids
            ),
        )
        items = items.filter(in_ids("id", below))
    return items.select_related("prompt").order_by("id")


def item_agreement(item_ids: list[int]) -> dict[int, float | None]:
    """``{item id: agreement rate of its counted labels}`` for a page of items (None under two
    labels with a verdict), by the rule of ``annotation.agreement.agreement_rate``. One query."""
    rows = (
        Label.objects.filter(item_id__in=item_ids, both_bad=False).exclude(review_status=Label.ReviewStatus.REJECTED)
        .order_by("item_id", "id").values_list("item_id", "ranking")
    )
    rankings = defaultdict(list)
    for item_id, ranking in rows:
        rankings[item_id].append(ranking)
    return {item_id: agreement_rate([rankings[item_id]])[0] for item_id in item_ids}


def open_leases_by_item(item_ids: list[int]) -> dict[int, int]:
    """``{item id: leases held now}`` (active, not expired) for a page of items. One query."""
    leases = (
        Assignment.objects.filter(item_id__in=item_ids, status=Assignment.Status.ACTIVE, expires_at__gt=timezone.now())
        .values("item_id").annotate(held=Count("id")).values_list("item_id", "held")
    )
    return dict(leases)

"""How the next comparison item is chosen and leased to an annotator.

A claim is a lease: an ``active`` Assignment with an ``expires_at``. An item is
*open* while its submitted labels plus unexpired leases are fewer than the
project's ``labels_per_item``. Claims lock the item row (``SELECT ... FOR UPDATE
SKIP LOCKED`` on PostgreSQL) and recount under the lock, so concurrent claimers
never over-assign; on SQLite the IMMEDIATE transaction serialises writers.

Selection order is pluggable: ``ORDERINGS`` maps a name to a function that orders
the open-candidates queryset, and each project names one (``Project.selection_order``).
Register a new entry (e.g. an active-learning order that annotates candidates with
the reward model's uncertainty) with ``register_ordering``.
"""
import random
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import Assignment, ComparisonItem, Project

CANDIDATES_PER_CLAIM = 25
# The item on screen, one prefetched, and one whose submit is still in flight: enough
# for an instant switch, few enough that an annotator never sits on a queue others
# could be labelling.
MAX_OPEN_LEASES = 3


def _sequential(candidates: QuerySet) -> QuerySet:
    return candidates.order_by("id")


def _random(candidates: QuerySet) -> QuerySet:
    return candidates.order_by("?")


ORDERINGS: dict[str, Callable[[QuerySet], QuerySet]] = {
    "sequential": _sequential,
    "random": _random,
}


def register_ordering(name: str, order: Callable[[QuerySet], QuerySet]) -> None:
    """Make ``order`` selectable as a project's ``selection_order``."""
    ORDERINGS[name] = order


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.ASSIGNMENT_LEASE_SECONDS)


def _holding(now) -> Q:
    """Assignments that occupy one of an item's slots right now."""
    return Q(status=Assignment.Status.SUBMITTED) | Q(status=Assignment.Status.ACTIVE, expires_at__gt=now)


def _seen_by(annotator, now) -> Q:
    """The annotator finished or skipped the item, or holds an unexpired lease on it."""
    return Q(annotator=annotator) & (
        Q(status__in=[Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED])
        | Q(status=Assignment.Status.ACTIVE, expires_at__gt=now)
    )


def unfinished_items_for(*, project: Project, annotator, now) -> QuerySet:
    """Items still short of labels that ``annotator`` has not seen (own lapsed leases count as unseen).

    ``label_count`` prunes finished items through an index, so the cost follows the
    open part of the queue, not the project's history.
    """
    seen = Assignment.objects.filter(_seen_by(annotator, now), item=OuterRef("pk"))
    return ComparisonItem.objects.filter(project=project, label_count__lt=project.labels_per_item).exclude(Exists(seen))


def open_items_for(*, project: Project, annotator, now) -> QuerySet:
    """Unfinished items with a free slot right now (not all slots leased to others)."""
    holding = (
        Assignment.objects.filter(_holding(now), item=OuterRef("pk"))
        .order_by()
        .values("item")
        .annotate(count=Count("id"))
        .values("count")
    )
    # A correlated subquery, not a JOIN + GROUP BY: with ORDER BY id LIMIT n,
    # PostgreSQL stops after the first n open items instead of grouping them all.
    return unfinished_items_for(project=project, annotator=annotator, now=now).annotate(
        holding=Coalesce(Subquery(holding), 0)
    ).filter(holding__lt=project.labels_per_item)


def _item_has_room(item: ComparisonItem, *, annotator, wanted: int, now) -> bool:
    holding = (
        Assignment.objects.filter(item=item)
        .exclude(annotator=annotator)
        .filter(_holding(now))
        .count()
    )
    return holding < wanted


def _shuffled_response_ids(item: ComparisonItem) -> list[int]:
    response_ids = list(item.slots.values_list("response_id", flat=True))
    # Position is randomised per assignment so neither side is systematically
    # favoured; SystemRandom keeps the order unpredictable from the client.
    random.SystemRandom().shuffle(response_ids)
    return response_ids


def assignment_claim_next(
    *, project: Project, annotator, exclude_ids=(), ordering: str = "sequential"
) -> Assignment | None:
    """Lease the next open item to ``annotator``; ``None`` when nothing is left.

    Idempotent for a reload: an annotator's unexpired lease in the project comes
    back first. ``exclude_ids`` are leases the client already has on screen, so
    asking again *prefetches* the following item; an annotator holds at most
    ``MAX_OPEN_LEASES`` leases at once.
    """
    now = timezone.now()
    open_leases = list(
        Assignment.objects.filter(
            annotator=annotator, item__project=project, status=Assignment.Status.ACTIVE, expires_at__gt=now
        ).order_by("id")
    )
    reusable = [lease for lease in open_leases if lease.id not in set(exclude_ids)]
    if reusable:
        return reusable[0]
    if len(open_leases) >= MAX_OPEN_LEASES:
        return None

    order = ORDERINGS[ordering]
    candidate_ids = list(
        order(open_items_for(project=project, annotator=annotator, now=now)).values_list("id", flat=True)[
            :CANDIDATES_PER_CLAIM
        ]
    )
    for item_id in candidate_ids:
        with transaction.atomic():
            item = ComparisonItem.objects.select_for_update(skip_locked=True).filter(id=item_id).first()
            if item is None:  # another claimer holds this row; try the next candidate
                continue
            if not _item_has_room(item, annotator=annotator, wanted=project.labels_per_item, now=now):
                continue
            expires_at = now + lease_duration()
            lapsed = Assignment.objects.filter(item=item, annotator=annotator, status=Assignment.Status.ACTIVE).first()
            if lapsed is not None:
                # The same annotator's own expired lease: renew it rather than
                # dealing a second assignment (unique per item and annotator).
                lapsed.expires_at = expires_at
                lapsed.save(update_fields=["expires_at"])
                return lapsed
            return Assignment.objects.create(
                item=item,
                annotator=annotator,
                display_order=_shuffled_response_ids(item),
                expires_at=expires_at,
            )
    return None


def assignment_still_holds_slot(assignment: Assignment, *, now) -> bool:
    """Whether a (possibly lapsed) lease may still be turned into a label.

    Caller holds the item's row lock. A lapsed lease may submit only if nobody took
    its slot in the meantime, so a late submit never over-labels an item.
    """
    if assignment.expires_at > now:
        return True
    return _item_has_room(
        assignment.item, annotator=assignment.annotator, wanted=assignment.item.project.labels_per_item, now=now
    )

"""How the next comparison item is chosen and leased to an annotator.

A claim is a lease: an ``active`` Assignment with an ``expires_at``. An item is
*open* while its submitted labels plus unexpired leases are fewer than the
project's ``labels_per_item``. Claims lock the item row (``SELECT ... FOR UPDATE
SKIP LOCKED`` on PostgreSQL) and recount under the lock, so concurrent claimers
never over-assign; on SQLite the IMMEDIATE transaction serialises writers. A
claim that loses its races reads fresh candidates and finally waits for a row
lock, so "nothing left" is never an artefact of contention.

Selection order is pluggable: ``ORDERINGS`` maps a name to a function that orders
the open-candidates queryset, and each project names one (``Project.selection_order``).
Built in: ``sequential`` (import order), ``random``, and ``uncertainty`` (active learning:
the items the champion reward model is least sure of first, ``ComparisonItem.model_priority``,
mixed with a share of random draws). Register another with ``register_ordering``.
"""
import random
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.gold import gold_lease_drawn
from annotation.models import Assignment, ComparisonItem, ComparisonItemResponse, Project, Prompt, Response
from annotation.sql_rows import columns, instances, lock_clause
from config.errors import ConflictError

CANDIDATES_PER_CLAIM = 25
# Rounds of fresh candidates tried with SKIP LOCKED before a claim starts waiting
# for a row lock: skipping is cheap and usually enough; waiting guarantees progress.
SKIP_LOCKED_ROUNDS = 3
# Every waiting round leases an item or sees one taken by someone else, so the loop
# ends when the queue does; this cap only guards a request against a bug or a
# stampede. Losing that often is told "ask again", never "done". (Measured with 64
# claimers on one sequential queue: every lease within 5 rounds, "done" within 10.)
MAX_CLAIM_ROUNDS = 50
# The item on screen, one prefetched, and one whose submit is still in flight: enough
# for an instant switch, few enough that an annotator never sits on a queue others
# could be labelling.
MAX_OPEN_LEASES = 3


def _sequential(candidates: QuerySet) -> QuerySet:
    return candidates.order_by("id")


def _random(candidates: QuerySet) -> QuerySet:
    return candidates.order_by("?")


def _uncertainty(candidates: QuerySet) -> QuerySet:
    """Active learning: the items whose label the reward model most needs first (``model_priority``).

    A claim reads it through ``_indexed_candidate_ids``, and ``Project.uncertainty_random_share``
    of the claims draw a uniformly random start instead (``_random_start_candidate_ids``).
    Without a model every priority is 0, so this is the sequential order.
    """
    return candidates.order_by("-model_priority", "id")


ORDERINGS: dict[str, Callable[[QuerySet], QuerySet]] = {
    "sequential": _sequential,
    "random": _random,
    "uncertainty": _uncertainty,
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
    seen = Assignment.objects.filter(_seen_by(annotator, now), item=OuterRef("pk")).order_by().values("id")[:1]
    # A scalar subquery (one probe of the (item, annotator) index per candidate), not
    # NOT EXISTS: PostgreSQL turns that into an anti-join and may merge it with a full
    # scan of the assignments index, which grows with the project's history.
    # Gold items are not work to finish: they are dealt by _claim_gold, never from this queue.
    return ComparisonItem.objects.filter(
        project=project, label_count__lt=project.labels_per_item, gold_ranking__isnull=True
    ).annotate(seen_assignment=Subquery(seen)).filter(seen_assignment__isnull=True)


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


def _shuffled_responses(item: ComparisonItem) -> tuple[list[int], dict[int, tuple[str, str | None]]]:
    """The item's response ids in a fresh random order, and their texts and HTML.

    Position is randomised per assignment so neither side is systematically favoured;
    SystemRandom keeps the order unpredictable from the client. The texts come in the
    same query, for the payload the claim answers with.
    """
    # SQL, as every claim runs it: the ORM's join took longer to compile than to run.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT slot.response_id, response.text, response.html
                FROM {ComparisonItemResponse._meta.db_table} slot
                JOIN {Response._meta.db_table} response ON response.id = slot.response_id
                WHERE slot.item_id = %s ORDER BY slot.slot""",
            [item.id],
        )
        texts = {response_id: (text, html) for response_id, text, html in cursor.fetchall()}
    response_ids = list(texts)
    random.SystemRandom().shuffle(response_ids)
    return response_ids, texts


def _indexed_candidate_ids(
    *, project: Project, annotator, now, by_priority: bool = False, from_id: int | None = None
) -> list[int]:
    """``open_items_for(...)`` in the order of an index, first ``CANDIDATES_PER_CLAIM``, without scanning the project.

    By id (the sequential order), or by ``model_priority`` highest first then id (the
    uncertainty order); ``from_id`` starts the id order at that item (a random draw's start).

    ``label_count < wanted`` is a range on the middle column of ``(project, label_count,
    id)``, so a single ordered scan must either sort every unfinished item or walk the
    primary key past every finished one: both grow with the project. Split into one
    branch per label count (``label_count = 0``, ``= 1``, ...), each branch is an
    ordered index scan that stops after ``CANDIDATES_PER_CLAIM`` open rows; the union of
    a few dozen ids is then ordered once. Same items, same order, bounded cost
    (``tests/annotation/test_hot_path_plans.py`` checks the plans, and
    ``test_hot_path_queries.py`` that they pick what ``open_items_for`` would).

    Written as SQL because it runs on every claim: the ORM spent longer compiling the
    union of correlated subqueries than PostgreSQL spent running it. Each branch sits in a
    derived table, so its ORDER BY and LIMIT are legal on SQLite as well.
    """
    items, assignments = ComparisonItem._meta.db_table, Assignment._meta.db_table
    order = "item.model_priority DESC, item.id" if by_priority else "item.id"
    start = "AND item.id >= %s" if from_id is not None else ""
    branch = f"""
        SELECT id, model_priority FROM (
            SELECT item.id, item.model_priority FROM {items} item
            WHERE item.project_id = %s AND item.label_count = %s AND item.gold_ranking IS NULL {start}
              -- _seen_by: one probe of the (item, annotator) index, not an anti-join
              AND (SELECT seen.id FROM {assignments} seen
                   WHERE seen.item_id = item.id AND seen.annotator_id = %s
                     AND (seen.status IN (%s, %s) OR (seen.status = %s AND seen.expires_at > %s))
                   LIMIT 1) IS NULL
              -- _holding: slots taken right now
              AND (SELECT COUNT(*) FROM {assignments} held
                   WHERE held.item_id = item.id
                     AND (held.status = %s OR (held.status = %s AND held.expires_at > %s))) < %s
            ORDER BY {order} LIMIT %s
        ) AS level_{{count}}"""
    status = Assignment.Status
    at = connection.ops.adapt_datetimefield_value(now)
    wanted = project.labels_per_item
    params = []
    for count in range(wanted):
        params += [project.id, count, *([from_id] if from_id is not None else []), annotator.id, status.SUBMITTED,
                   status.SKIPPED, status.ACTIVE, at, status.SUBMITTED, status.ACTIVE, at, wanted, CANDIDATES_PER_CLAIM]
    sql = " UNION ALL ".join(branch.replace("{count}", str(count)) for count in range(wanted))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    key = (lambda row: (-row[1], row[0])) if by_priority else (lambda row: row[0])
    return [row[0] for row in sorted(rows, key=key)[:CANDIDATES_PER_CLAIM]]


def _random_start_candidate_ids(*, project: Project, annotator, now) -> list[int]:
    """Open items from a uniformly drawn point of the project's ids on, wrapping round to the start.

    The random share of the uncertainty order: which items come first has nothing to do with
    the model, so labels drawn this way estimate accuracy without its bias. The open items
    that follow a gap in the ids are a little more likely to come first, which is no bias
    about the model. Two index reads for the bounds, the same ordered walk as sequential.
    """
    bounds = ComparisonItem.objects.filter(project=project).aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return []
    start = random.randint(bounds["low"], bounds["high"])
    found = _indexed_candidate_ids(project=project, annotator=annotator, now=now, from_id=start)
    if len(found) < CANDIDATES_PER_CLAIM:
        wrapped = _indexed_candidate_ids(project=project, annotator=annotator, now=now)
        found += [item_id for item_id in wrapped if item_id < start][: CANDIDATES_PER_CLAIM - len(found)]
    return found


def _open_candidate_ids(*, project: Project, annotator, now, ordering: str) -> list[int]:
    """The first ``CANDIDATES_PER_CLAIM`` items open for ``annotator``, in the project's order."""
    order = ORDERINGS[ordering]
    if order is _sequential:
        return _indexed_candidate_ids(project=project, annotator=annotator, now=now)
    if order is _uncertainty:
        if random.random() < project.uncertainty_random_share:
            return _random_start_candidate_ids(project=project, annotator=annotator, now=now)
        return _indexed_candidate_ids(project=project, annotator=annotator, now=now, by_priority=True)
    candidates = order(open_items_for(project=project, annotator=annotator, now=now))
    return list(candidates.values_list("id", flat=True)[:CANDIDATES_PER_CLAIM])


def _open_leases(*, project: Project, annotator, now) -> list[Assignment]:
    """``annotator``'s unexpired leases in ``project``, oldest first, each with its item and prompt.

    SQL (``annotation.sql_rows``), as every claim runs it.
    """
    sql = f"""SELECT {columns(Assignment, "lease")}, {columns(ComparisonItem, "item")}, {columns(Prompt, "prompt")}
        FROM {Assignment._meta.db_table} lease
        JOIN {ComparisonItem._meta.db_table} item ON item.id = lease.item_id
        JOIN {Prompt._meta.db_table} prompt ON prompt.id = item.prompt_id
        WHERE lease.annotator_id = %s AND item.project_id = %s AND lease.status = %s AND lease.expires_at > %s
        ORDER BY lease.id"""
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [annotator.id, project.id, Assignment.Status.ACTIVE, at])
        rows = cursor.fetchall()
    leases = []
    for row in rows:
        lease, item, prompt = instances(row, (Assignment, ComparisonItem, Prompt))
        item.prompt = prompt
        lease.item = item
        leases.append(lease)
    return leases


def _lock_item(item_id: int, *, wait: bool) -> ComparisonItem | None:
    """Lock the item's row; ``None`` if another transaction holds it (``wait=False``) or it is gone.

    The prompt comes along (unlocked) for the payload the caller renders next. SQL
    (``annotation.sql_rows``), as every claim runs it.
    """
    sql = f"""SELECT {columns(ComparisonItem, "item")}, {columns(Prompt, "prompt")}
        FROM {ComparisonItem._meta.db_table} item
        JOIN {Prompt._meta.db_table} prompt ON prompt.id = item.prompt_id
        WHERE item.id = %s
        {lock_clause(of="item", skip_locked=not wait)}"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [item_id])
        row = cursor.fetchone()
    if row is None:
        return None
    item, prompt = instances(row, (ComparisonItem, Prompt))
    item.prompt = prompt
    return item


def _lease_locked_item(item: ComparisonItem, *, project: Project, annotator, now) -> Assignment | None:
    """Lease ``item`` if it is still open for ``annotator``; ``None`` if it filled up meanwhile.

    Caller holds the item's row lock. The candidate list was read before the lock, so
    everything it promised is checked again here: a free slot, and that this
    annotator has not finished, skipped or leased the item since (from another tab).
    The item's assignments are few (its slots plus skips), so one query reads them all
    and the checks run on them here: the same rules as ``_holding`` and ``_seen_by``.
    A gold item has no slots (every annotator may get it once), so only the last check applies.
    """
    gold = item.gold_ranking is not None
    holding = 0
    own = None
    for lease in Assignment.objects.filter(item=item):
        occupies = lease.status == Assignment.Status.SUBMITTED or (
            lease.status == Assignment.Status.ACTIVE and lease.expires_at > now
        )
        if lease.annotator_id == annotator.id:
            own = lease
        elif occupies:
            holding += 1
    if not gold and holding >= project.labels_per_item:
        return None
    expires_at = now + lease_duration()
    if own is not None:
        if own.status != Assignment.Status.ACTIVE or own.expires_at > now:
            return None  # finished, skipped or leased since the candidates were read
        # The same annotator's own expired lease: renew it rather than dealing a second
        # assignment (unique per item and annotator), if its row is free. Submit, skip and
        # heartbeat lock an assignment and then its item; a submit of this very lease (another
        # tab) may hold the row and be waiting for the item's lock, which this claim holds, so
        # waiting here would deadlock. Locked or no longer active: not this claim's to lease.
        if not Assignment.objects.select_for_update(skip_locked=True).filter(
            id=own.id, status=Assignment.Status.ACTIVE
        ).exists():
            return None
        own.expires_at = expires_at
        own.save(update_fields=["expires_at"])
        own.item = item
        return own
    display_order, texts = _shuffled_responses(item)
    lease = Assignment.objects.create(item=item, annotator=annotator, display_order=display_order, expires_at=expires_at)
    lease.response_texts = texts  # read by selectors.assignment_payload instead of a second query
    return lease


def _pick_wait_target(candidate_ids: list[int]) -> int:
    # Random, not the first: claimers that lost together read the same candidates,
    # and if they all queued on one row only the first in line would win.
    return random.choice(candidate_ids)


def _claim_item(item_id: int, *, project: Project, annotator, now, wait: bool) -> Assignment | None:
    """Lock one candidate and lease it if still open, in its own short transaction."""
    with transaction.atomic():
        item = _lock_item(item_id, wait=wait)
        if item is None:
            return None
        return _lease_locked_item(item, project=project, annotator=annotator, now=now)


def _claim_gold(*, project: Project, annotator, now) -> Assignment | None:
    """Lease a gold item ``annotator`` has not seen, or ``None`` when they have seen them all.

    Gold items have no slots, so there is nothing to wait for: a candidate whose row another
    claim holds is skipped, and the caller deals an ordinary item instead.
    """
    seen = Assignment.objects.filter(_seen_by(annotator, now), item=OuterRef("pk")).order_by().values("id")[:1]
    candidate_ids = list(
        ComparisonItem.objects.filter(project=project, gold_ranking__isnull=False)
        .annotate(seen_assignment=Subquery(seen))
        .filter(seen_assignment__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)[:CANDIDATES_PER_CLAIM]
    )
    for item_id in candidate_ids:
        lease = _claim_item(item_id, project=project, annotator=annotator, now=now, wait=False)
        if lease is not None:
            return lease
    return None


def assignment_claim_next(
    *, project: Project, annotator, exclude_ids=(), ordering: str = "sequential"
) -> Assignment | None:
    """Lease the next open item to ``annotator``; ``None`` only when nothing is left.

    Gold items (``annotation.gold``): with probability ``project.gold_rate`` (a draw that
    ``gold_lease_drawn`` makes reproducible) the new lease is a gold item this annotator has
    not seen, if one is left; the payload is the same as any item's. Gold items are never
    dealt from the ordinary queue, so "nothing left" means the ordinary items are done.

    Idempotent for a reload: an annotator's unexpired lease in the project comes
    back first. ``exclude_ids`` are leases the client already has on screen, so
    asking again *prefetches* the following item; an annotator holds at most
    ``MAX_OPEN_LEASES`` leases at once (asking for more also answers ``None``).

    ``None`` otherwise means no item is open for this annotator: contention is not
    exhaustion. Each round reads fresh candidates and tries them with ``SKIP
    LOCKED``; from round ``SKIP_LOCKED_ROUNDS`` on, it also waits for one
    candidate's row lock. Raises ``ConflictError`` (ask again) in the unlikely case
    that ``MAX_CLAIM_ROUNDS`` rounds all lost their race. Each attempt is its own
    transaction holding one item row lock; call it outside any transaction.
    """
    now = timezone.now()
    open_leases = _open_leases(project=project, annotator=annotator, now=now)
    reusable = [lease for lease in open_leases if lease.id not in set(exclude_ids)]
    if reusable:
        return reusable[0]
    if len(open_leases) >= MAX_OPEN_LEASES:
        return None
    if project.gold_rate > 0 and gold_lease_drawn(project=project, annotator=annotator):
        lease = _claim_gold(project=project, annotator=annotator, now=now)
        if lease is not None:
            return lease

    for round_number in range(MAX_CLAIM_ROUNDS):
        candidate_ids = _open_candidate_ids(project=project, annotator=annotator, now=now, ordering=ordering)
        if not candidate_ids:
            return None
        # Candidates skipped (row locked) or found full were being taken by other
        # claimers, so a fresh read moves past them. Skipping alone can lose every
        # round when everyone reads the same first items (sequential order); waiting
        # for a row lock cannot: once held, the item is ours or someone leased it.
        # The wait cannot deadlock: it is the first lock of its transaction, so the
        # waiter holds nothing another transaction could be waiting for, and the
        # holder (a claim, submit or heartbeat) keeps an item row for a few statements.
        wait_on = _pick_wait_target(candidate_ids) if round_number >= SKIP_LOCKED_ROUNDS else None
        for item_id in candidate_ids:
            lease = _claim_item(item_id, project=project, annotator=annotator, now=now, wait=item_id == wait_on)
            if lease is not None:
                return lease
    raise ConflictError("Many annotators are asking for items at once; please ask again.")


def assignment_still_holds_slot(assignment: Assignment, *, now) -> bool:
    """Whether a (possibly lapsed) lease may still be turned into a label.

    Caller holds the item's row lock. A lapsed lease may submit only if nobody took
    its slot in the meantime, so a late submit never over-labels an item.
    """
    if assignment.expires_at > now or assignment.item.gold_ranking is not None:
        return True  # a gold item has no slots to lose
    return _item_has_room(
        assignment.item, annotator=assignment.annotator, wanted=assignment.item.project.labels_per_item, now=now
    )

"""Stored tallies of a project's labels, so the Results page never reads every label.

Two counts are kept per project, one ``LabelTally`` row each:

- ``agreement``: per unordered pair of annotators ``(a, b)``, a < b, how many verdicts of
  their labels on the same items were compared and how many agreed (``annotation.agreement``'s
  rule); per annotator, their labels that are not "both bad". Pair-level counts let
  ``annotation.quality`` leave any annotator out at read time. Two labels of one item never
  share an annotator (``label_one_per_item_annotator``), so every pair has a < b.
- ``model_comparisons``: ``{(model_a, model_b, outcome): n}`` as
  ``training.leaderboard.model_comparison_counts`` defines it.

Both are sums over labels (or pairs of labels of one item), and labels are never edited, only
written and deleted, so a label can be *folded* in once and stay. Celery beat stores newly
settled labels every ``LABEL_TALLY_FOLD_SECONDS`` (``label_tallies_fold``); a read adds the
labels not yet stored in memory and writes nothing. Each pair of labels of an item is counted
once, when the later of the two is added, against the labels of its item already in (all of
an item's labels come in one query, by id and creation time; each process keeps the rows it
has read, so a read fetches only the labels it has not seen before).

Which labels are in: every label with ``id <= watermark``, plus ``folded_above``. Ids are
taken at INSERT but transactions commit in any order, so ``id > watermark`` alone could pass
over a label that commits late. A label is folded for good only once it has *settled*: it is
older than ``settle_age()``, which is longer than any submit transaction lasts (they take
milliseconds; the margin is minutes, which also covers clocks of web servers that disagree by
less) and longer than the undo window. The assumption, written down: a label whose
``created_at`` is more than ``settle_age()`` ago, and every label with a smaller id, is
committed. The watermark then moves up to a settled label only when no younger label of the
project lies below it; settled labels above it are listed in ``folded_above`` (a few minutes'
worth). Labels not yet stored are counted on every read, on top of the stored counts: a read
is exactly the full computation over the labels it saw.

Deletions and reviews. A label stops counting when it is undone, deleted by an admin or
rejected by a reviewer, and counts again when a rejection is reverted. Each calls
``label_tally_change_record``, which takes that one label out of (or puts it back into) every
tally of its project that holds it: its own count, its pairs with the labels of its item the
tally holds, its model comparisons. Two small reads (the item's labels, its responses' model
names), whatever the project's size; a tally that does not hold the label is left to its next
fold. (It used to mark the tallies stale instead, and the next read rebuilt them from every
label of the project: a reviewer rejecting labels one by one in a big project made each
Results load after a decision a full rebuild.) Deletions that bypass the services (the admin
deleting an item, a user or a prompt, which cascades) are found by ``label_tallies_check``
(Celery beat, ``annotation.tasks``): it counts the labels a tally says it holds and rebuilds on
a mismatch. After bulk loads that write labels around the services (COPY), call
``label_tallies_rebuild`` (``manage.py rebuild_label_tallies``).

Locks: whoever stores (the fold; a read only when the tally is stale or more than
``LABEL_TALLY_READ_FOLD_LIMIT`` settled labels wait) locks the tally row
(``select_for_update``), so two never add the same labels twice; other reads take no lock. A
deletion (or a review decision) locks the project's tally rows last in its transaction,
waiting for a fold in progress, so it takes out exactly what that fold stored; a fold after it
no longer sees the label.
"""
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from annotation.id_sets import in_ids
from annotation.models import ComparisonItemResponse, Label, LabelTally, Project
from annotation.preferences import preferred_pairs, tied_pairs, verdicts

REBUILD_CHUNK = 5000


def settle_age() -> timedelta:
    """How old a label must be before it is stored in a tally: the commit margin, and past the undo window."""
    return max(
        timedelta(seconds=settings.LABEL_TALLY_SETTLE_SECONDS),
        timedelta(seconds=settings.LABEL_UNDO_SECONDS + 60),
    )


class LabelRow(NamedTuple):
    id: int
    item_id: int
    annotator_id: int
    ranking: list
    both_bad: bool
    created_at: datetime
    # Response id -> model name, for the responses with one (model comparisons only).
    model_of: dict | None = None


@dataclass
class AgreementCounts:
    """``pairs``: ``{(a, b): [agreements, comparisons]}`` with a < b; ``labels``: ``{annotator: labels not both bad}``."""

    pairs: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    labels: Counter = field(default_factory=Counter)

    @classmethod
    def from_json(cls, counts: dict) -> "AgreementCounts":
        return cls(
            pairs={(a, b): [agreements, comparisons] for a, b, agreements, comparisons in counts.get("pairs", [])},
            labels=Counter({annotator: n for annotator, n in counts.get("labels", [])}),
        )

    def as_json(self) -> dict:
        return {
            "pairs": [[a, b, *cell] for (a, b), cell in sorted(self.pairs.items())],
            "labels": sorted(self.labels.items()),
        }

    def fold(self, labels: list[LabelRow], item_rows: list[LabelRow], is_folded: Callable[[int], bool]) -> None:
        """Add ``labels`` (in id order), each compared with the labels of its item in ``item_rows`` already folded."""
        by_item = defaultdict(list)
        for row in item_rows:
            if not row.both_bad:
                by_item[row.item_id].append(row)
        judged: dict[int, dict] = {}

        def verdicts_of(row: LabelRow) -> dict:
            if row.id not in judged:
                judged[row.id] = verdicts(row.ranking)
            return judged[row.id]

        added: set[int] = set()
        for label in sorted(labels, key=attrgetter("id")):
            added.add(label.id)
            if label.both_bad:
                continue
            self.labels[label.annotator_id] += 1
            mine = verdicts_of(label)
            for mate in by_item[label.item_id]:
                if mate.id == label.id or not (mate.id in added or is_folded(mate.id)):
                    continue
                theirs = verdicts_of(mate)
                cell = self.pairs.setdefault(
                    (min(label.annotator_id, mate.annotator_id), max(label.annotator_id, mate.annotator_id)), [0, 0]
                )
                for pair in mine.keys() & theirs.keys():
                    cell[0] += mine[pair] == theirs[pair]
                    cell[1] += 1

    def change(self, label: LabelRow, mates: list[LabelRow], sign: int) -> None:
        """Take ``label`` out (``sign`` -1) or put it back (+1): its count and its pairs with ``mates``,
        the labels of its item the counts hold. What a rebuild without (or with) it would give."""
        if label.both_bad:
            return
        _counter_add(self.labels, label.annotator_id, sign)
        mine = verdicts(label.ranking)
        for mate in mates:
            if mate.both_bad or mate.id == label.id:
                continue
            theirs = verdicts(mate.ranking)
            key = (min(label.annotator_id, mate.annotator_id), max(label.annotator_id, mate.annotator_id))
            cell = self.pairs.setdefault(key, [0, 0])
            for pair in mine.keys() & theirs.keys():
                cell[0] += sign * (mine[pair] == theirs[pair])
                cell[1] += sign
            if cell[1] == 0:
                del self.pairs[key]  # no comparison left: a rebuild would not list the pair


@dataclass
class ModelComparisonCounts:
    """``cells``: ``{(model_a, model_b, outcome): n}``, outcome 1.0 (a preferred) or 0.5 (tie)."""

    cells: Counter = field(default_factory=Counter)

    @classmethod
    def from_json(cls, counts: dict) -> "ModelComparisonCounts":
        return cls(cells=Counter({(a, b, outcome): n for a, b, outcome, n in counts.get("cells", [])}))

    def as_json(self) -> dict:
        return {"cells": [[a, b, outcome, n] for (a, b, outcome), n in sorted(self.cells.items())]}

    def fold(self, labels: list[LabelRow], item_rows: list[LabelRow], is_folded: Callable[[int], bool]) -> None:
        """Add ``labels``; each stands alone (``item_rows`` and ``is_folded`` are not needed)."""
        for label in labels:
            self.cells.update(_model_cells(label))

    def change(self, label: LabelRow, mates: list[LabelRow], sign: int) -> None:
        """Take ``label`` out (``sign`` -1) or put it back (+1); ``mates`` are not needed."""
        for cell in _model_cells(label):
            _counter_add(self.cells, cell, sign)


def _model_cells(label: LabelRow) -> Iterator[tuple[str, str, float]]:
    """The ``(model_a, model_b, outcome)`` cells one label counts in: none for "both bad"."""
    if label.both_bad:
        return
    for pairs, outcome in ((preferred_pairs(label.ranking), 1.0), (tied_pairs(label.ranking), 0.5)):
        for first, second in pairs:
            model_a, model_b = label.model_of.get(first), label.model_of.get(second)
            if model_a and model_b and model_a != model_b:
                yield model_a, model_b, outcome


def _counter_add(counter: Counter, key, sign: int) -> None:
    counter[key] += sign
    if counter[key] == 0:
        del counter[key]  # as_json lists what a rebuild counts, and a rebuild has no zeros


# A label a reviewer rejected is out of every tally, as if deleted (annotation.review). Rejecting and
# reverting both go through label_tally_change_record: the label leaves, or comes back to, the tallies
# that hold it (or whose watermark passed it while it was out).
REJECTED = {"review_status": Label.ReviewStatus.REJECTED}

LABEL_FIELDS = ("id", "item_id", "annotator_id", "ranking", "both_bad", "created_at")


def _agreement_keys(*, project_id: int, watermark: int) -> list[tuple[int, datetime]]:
    """Every label of every item that has a label above ``watermark``: the new labels and what they meet.

    One statement, so one snapshot: a label is either in it with all its item's labels or not at all.
    The inner query walks the label ids above the watermark (the primary key), the outer one each
    item's labels (``item_id``'s index): no read grows with the project.
    """
    changed_items = Label.objects.filter(item__project_id=project_id, id__gt=watermark).values("item_id")
    return list(Label.objects.filter(item_id__in=changed_items).exclude(**REJECTED).order_by().values_list("id", "created_at"))


def _agreement_rows_by_id(ids: list[int]) -> list[LabelRow]:
    return [LabelRow(*row) for row in Label.objects.filter(id__in=ids).order_by().values_list(*LABEL_FIELDS)]


def _agreement_rebuild_rows(*, project_id: int) -> Iterator[list[LabelRow]]:
    """The project's labels, one item's at a time (a chunked cursor, so memory holds one chunk)."""
    rows = (
        Label.objects.filter(item__project_id=project_id).exclude(**REJECTED)
        .order_by("item_id", "id").values_list(*LABEL_FIELDS)
    )
    for _, group in itertools.groupby(rows.iterator(chunk_size=REBUILD_CHUNK), key=lambda row: row[1]):
        yield [LabelRow(*row) for row in group]


def _model_rows(rows: Iterable[tuple]) -> Iterator[LabelRow]:
    """Labels from rows of (label fields..., response id, model name), one row per response of the label's item."""
    for _, group in itertools.groupby(rows, key=lambda row: row[0]):
        group = list(group)
        yield LabelRow(*group[0][: len(LABEL_FIELDS)], model_of={row[-2]: row[-1] for row in group if row[-1]})


def _model_queryset(project_id: int):
    # The model names come with the labels, through the item's responses (the responses a
    # ranking orders), so a read is one query rather than labels, then names.
    return (
        Label.objects.filter(item__project_id=project_id).exclude(**REJECTED)
        .order_by("id")
        .values_list(*LABEL_FIELDS, "item__slots__response_id", "item__slots__response__model_name")
    )


def _model_comparison_keys(*, project_id: int, watermark: int) -> list[tuple[int, datetime]]:
    """The labels above ``watermark``: the primary key's range, each checked against its item's project."""
    return list(
        Label.objects.filter(item__project_id=project_id, id__gt=watermark).exclude(**REJECTED)
        .order_by().values_list("id", "created_at")
    )


def _model_comparison_rows_by_id(ids: list[int]) -> list[LabelRow]:
    return list(_model_rows(Label.objects.filter(id__in=ids).order_by("id").values_list(
        *LABEL_FIELDS, "item__slots__response_id", "item__slots__response__model_name"
    )))


def _model_comparison_rebuild_rows(*, project_id: int) -> Iterator[list[LabelRow]]:
    rows = _model_rows(_model_queryset(project_id).iterator(chunk_size=REBUILD_CHUNK))
    while chunk := list(itertools.islice(rows, REBUILD_CHUNK)):
        yield chunk


@dataclass(frozen=True)
class _Kind:
    counts: type
    # The (id, created_at) of the labels a read needs above a watermark (one statement), and
    # the rows of given ids: the rows of labels already read come from _recent_rows instead.
    keys: Callable[..., list[tuple[int, datetime]]]
    rows_by_id: Callable[[list[int]], list[LabelRow]]
    rebuild_rows: Callable[..., Iterator[list[LabelRow]]]


KINDS = {
    LabelTally.Kind.AGREEMENT: _Kind(AgreementCounts, _agreement_keys, _agreement_rows_by_id, _agreement_rebuild_rows),
    LabelTally.Kind.MODEL_COMPARISONS: _Kind(
        ModelComparisonCounts, _model_comparison_keys, _model_comparison_rows_by_id, _model_comparison_rebuild_rows
    ),
}

# The rows of the labels the last read of each (project, kind) needed, kept per process by
# (id, created_at). A label's fields and its item's responses never change once written, so a
# row read once serves every later read while the label waits above the watermark (settle age
# plus up to a fold period: a few minutes of labels, thousands under full load). Without it
# each Results page load fetched every one of them again, joined to its responses. A rejected
# or deleted label drops out of the keys, and so out of the read. created_at is in the key
# because a database may hand a deleted row's id out again (SQLite does).
_recent_rows: dict[tuple[int, str], dict[tuple[int, datetime], LabelRow]] = {}


def _rows_above(*, project_id: int, kind_name: str, watermark: int) -> list[LabelRow]:
    """The rows ``kind_name`` reads above ``watermark``: one query for the keys, one more only for labels not seen before."""
    kind = KINDS[kind_name]
    keys = kind.keys(project_id=project_id, watermark=watermark)
    known = _recent_rows.get((project_id, kind_name), {})
    missing = [label_id for label_id, created_at in keys if (label_id, created_at) not in known]
    fetched = {(row.id, row.created_at): row for row in kind.rows_by_id(missing)} if missing else {}
    rows = {}
    for key in keys:
        row = known.get(key) or fetched.get(key)
        if row is not None:  # None: deleted between the two queries
            rows[key] = row
    _recent_rows[project_id, kind_name] = rows  # replaced, not grown: only what this read needed
    return sorted(rows.values(), key=attrgetter("id"))


@dataclass
class _Plan:
    """What a read found above the watermark, and where the watermark can go."""

    settling: list[LabelRow]  # settled and not yet folded: to store
    unsettled: list[LabelRow]  # too young to store: counted on this read only
    watermark: int
    folded_above: list[int]

    def changes(self, tally: LabelTally) -> bool:
        return bool(self.settling) or self.watermark != tally.watermark or self.folded_above != sorted(tally.folded_above)


def _settled_frontier(*, watermark: int, cutoff: datetime) -> int | None:
    """The largest id of a settled label of any project above ``watermark``; None if there is none.

    Every label up to it is committed (the module's assumption), so a project's watermark may
    move up to it once its own labels below it are folded, even when they are few: otherwise
    a quiet project's watermark would stay behind every other project's new labels, and each
    read would walk them all. Walks only the labels above the watermark (the primary key).
    """
    return Label.objects.filter(id__gt=watermark, created_at__lt=cutoff).aggregate(frontier=Max("id"))["frontier"]


def _plan(tally: LabelTally, rows: list[LabelRow], cutoff: datetime, frontier: int | None) -> _Plan:
    folded_above = set(tally.folded_above)
    above = [row for row in rows if row.id > tally.watermark]
    settling = [row for row in above if row.id not in folded_above and row.created_at < cutoff]
    unsettled = [row for row in above if row.id not in folded_above and row.created_at >= cutoff]
    settled_ids = [row.id for row in above if row.created_at < cutoff]
    # Without a row yet, a project with nothing settled of its own stays unwritten (watermark 0).
    if frontier is not None and (tally.pk is not None or settled_ids):
        settled_ids.append(frontier)
    watermark = tally.watermark
    if settled_ids:
        # Every label below a settled one is committed (the module's assumption), so it is in
        # ``rows``: below the first unsettled one, all are folded once ``settling`` is.
        ceiling = min(row.id for row in unsettled) - 1 if unsettled else max(settled_ids)
        watermark = max(watermark, min(max(settled_ids), ceiling))
    kept = sorted(i for i in folded_above | {row.id for row in settling} if i > watermark)
    return _Plan(settling=settling, unsettled=unsettled, watermark=watermark, folded_above=kept)


def _folded(tally: LabelTally) -> Callable[[int], bool]:
    above = set(tally.folded_above)
    return lambda label_id: label_id <= tally.watermark or label_id in above


def _store(tally: LabelTally, kind: _Kind, rows: list[LabelRow], plan: _Plan, cutoff: datetime) -> None:
    """Fold ``plan.settling`` into the locked ``tally`` and save it."""
    counts = kind.counts.from_json(tally.counts)
    counts.fold(plan.settling, rows, _folded(tally))
    tally.counts = counts.as_json()
    tally.folded += len(plan.settling)
    tally.watermark, tally.folded_above = plan.watermark, plan.folded_above
    tally.settled_before = max(filter(None, (tally.settled_before, cutoff)))
    tally.version += 1
    tally.save()


def _rebuild(tally: LabelTally, kind: _Kind, cutoff: datetime) -> None:
    """Count the locked ``tally`` again from every settled label of its project and save it."""
    counts = kind.counts()
    settled, youngest = [], None
    for chunk in kind.rebuild_rows(project_id=tally.project_id):
        ready = [row for row in chunk if row.created_at < cutoff]
        counts.fold(ready, ready, lambda label_id: False)
        settled += [row.id for row in ready]
        young = [row.id for row in chunk if row.created_at >= cutoff]
        if young:
            youngest = min(young) if youngest is None else min(youngest, *young)
    watermark = 0
    if settled:
        # Up to the settled frontier of every project (see _settled_frontier), below this one's young labels.
        frontier = _settled_frontier(watermark=max(settled), cutoff=cutoff) or max(settled)
        watermark = min(frontier, youngest - 1) if youngest is not None else frontier
    tally.counts = counts.as_json()
    tally.watermark = watermark
    tally.folded_above = sorted(i for i in settled if i > watermark)
    tally.folded = len(settled)
    tally.settled_before = cutoff
    tally.stale = False
    tally.version += 1
    tally.save()


def _settle(*, project_id: int, kind_name: str, seen: LabelTally, rows, plan, cutoff: datetime):
    """Under the tally's row lock: rebuild if stale, store what has settled. Returns ``(tally, rows, plan)``."""
    kind = KINDS[kind_name]
    with transaction.atomic():
        if seen.pk is None:
            LabelTally.objects.get_or_create(project_id=project_id, kind=kind_name)
        tally = LabelTally.objects.select_for_update().get(project_id=project_id, kind=kind_name)
        if tally.stale:
            _rebuild(tally, kind, cutoff)
            rows = None
        elif tally.version != seen.version:
            rows = None  # another reader stored in the meantime: what we read is out of date
        if rows is None:
            rows = _rows_above(project_id=project_id, kind_name=kind_name, watermark=tally.watermark)
            plan = _plan(tally, rows, cutoff, _settled_frontier(watermark=tally.watermark, cutoff=cutoff))
        if plan.changes(tally):
            _store(tally, kind, rows, plan, cutoff)
    return tally, rows, plan


def _read(*, project_id: int, kind_name: str, cutoff: datetime, with_frontier: bool):
    """The tally (no row yet is the empty one: nothing folded, watermark 0), the labels above its
    watermark and the plan for them; ``rows`` and ``plan`` are None for a stale tally. No lock.

    ``with_frontier``: also find where the watermark may move (only who stores needs it).
    """
    tally = LabelTally.objects.filter(project_id=project_id, kind=kind_name).first()
    if tally is None:
        tally = LabelTally(project_id=project_id, kind=kind_name)
    if tally.stale:
        return tally, None, None
    rows = _rows_above(project_id=project_id, kind_name=kind_name, watermark=tally.watermark)
    frontier = _settled_frontier(watermark=tally.watermark, cutoff=cutoff) if with_frontier else None
    return tally, rows, _plan(tally, rows, cutoff, frontier)


def _tally_read(*, project_id: int, kind_name: str):
    """The kind's counts over every label of the project: stored ones plus those not yet stored.

    Two queries (the tally, the keys of the labels above its watermark), and a third for the rows of
    labels this process has not read before (``_rows_above``); no lock, no write: the labels not
    yet stored, settled or not, are counted in memory, and beat stores the settled ones
    (``label_tallies_fold``). Two exceptions write, under the tally's lock: a stale tally is
    rebuilt, and more than ``LABEL_TALLY_READ_FOLD_LIMIT`` settled labels waiting (beat is
    behind or not running) are stored, so reads stay short without beat too.
    """
    cutoff = timezone.now() - settle_age()
    tally, rows, plan = _read(project_id=project_id, kind_name=kind_name, cutoff=cutoff, with_frontier=False)
    if plan is None or len(plan.settling) > settings.LABEL_TALLY_READ_FOLD_LIMIT:
        tally, rows, plan = _settle(project_id=project_id, kind_name=kind_name, seen=tally, rows=rows, plan=plan, cutoff=cutoff)
        pending = plan.unsettled  # the settled ones are stored now
    else:
        pending = plan.settling + plan.unsettled
    counts = KINDS[kind_name].counts.from_json(tally.counts)
    counts.fold(pending, rows, _folded(tally))
    return counts


def _fold_project(*, project_id: int, kind_name: str, cutoff: datetime) -> int:
    """Store the project's settled labels in its ``kind_name`` tally (rebuild it if stale). Returns labels stored."""
    tally, rows, plan = _read(project_id=project_id, kind_name=kind_name, cutoff=cutoff, with_frontier=True)
    if plan is not None and not plan.changes(tally):
        return 0
    before = tally.folded
    tally, _, _ = _settle(project_id=project_id, kind_name=kind_name, seen=tally, rows=rows, plan=plan, cutoff=cutoff)
    return max(tally.folded - before, 0)


def label_tallies_fold(*, project: Project | None = None) -> dict:
    """Store every project's settled labels in its tallies (Celery beat, every ``LABEL_TALLY_FOLD_SECONDS``).

    What keeps reads from writing: between two runs a read counts at most the labels of the
    last ``LABEL_TALLY_FOLD_SECONDS`` plus the settle age in memory. Also moves a quiet
    project's watermark past other projects' labels and rebuilds stale tallies. Three queries
    per project and kind when nothing changed. Returns ``{"projects": n, "folded": labels stored}``.
    """
    cutoff = timezone.now() - settle_age()
    projects = [project.id] if project is not None else list(Project.objects.order_by("id").values_list("id", flat=True))
    folded = 0
    for project_id in projects:
        for kind_name in KINDS:
            folded += _fold_project(project_id=project_id, kind_name=kind_name, cutoff=cutoff)
    return {"projects": len(projects), "folded": folded}


def agreement_counts(*, project_id: int) -> AgreementCounts:
    """Agreement per annotator pair and labels per annotator over all the project's labels (see the module)."""
    return _tally_read(project_id=project_id, kind_name=LabelTally.Kind.AGREEMENT)


def model_comparison_cells(*, project_id: int) -> Counter:
    """``{(model_a, model_b, outcome): n}`` over all the project's labels (see the module)."""
    return _tally_read(project_id=project_id, kind_name=LabelTally.Kind.MODEL_COMPARISONS).cells


def label_row(label: Label) -> LabelRow:
    """What the tallies know of ``label``; take it before ``label.delete()``, which forgets the id."""
    return LabelRow(label.id, label.item_id, label.annotator_id, label.ranking, label.both_bad, label.created_at)


def label_tally_change_record(*, project_id: int, label: LabelRow, counts_now: bool) -> None:
    """The label (``label_row``) stopped counting (undone, deleted or rejected: ``counts_now``
    False) or counts again (a rejection reverted: True): change the project's tallies by that
    label alone.

    Call last in the changing transaction, after the label's row is deleted or its review
    status saved, and only when the label did count before (False) or did not (True). Locks
    the project's tally rows, waiting for a fold in progress, and judges by them as that fold
    left them. A tally changes where its rule says it holds the label (``id <= watermark`` or
    listed in ``folded_above``): leaving, the label was in its counts; returning, the rule
    counts it in again (the watermark may have passed it while it was out, or it stayed listed).
    Anywhere else the label is one a read counts in memory and a fold stores like any other
    (or, leaving, one they no longer see). A stale tally is left for its rebuild. Two reads at
    most (the item's counted labels, its responses' model names), then one UPDATE per tally;
    the version bump tells a fold that read before this to read again.
    """
    tallies = list(LabelTally.objects.select_for_update().filter(project_id=project_id).order_by("id"))
    changing = [tally for tally in tallies if not tally.stale and _folded(tally)(label.id)]
    row = mates = None
    if changing:
        item_labels = (
            Label.objects.filter(item_id=label.item_id).exclude(**REJECTED).exclude(id=label.id)
            .order_by("id").values_list(*LABEL_FIELDS)
        )
        mates = [LabelRow(*values) for values in item_labels]
        model_of = {}
        if any(tally.kind == LabelTally.Kind.MODEL_COMPARISONS for tally in changing):
            slots = ComparisonItemResponse.objects.filter(item_id=label.item_id).values_list("response_id", "response__model_name")
            model_of = {response_id: name for response_id, name in slots if name}
        row = label._replace(model_of=model_of)
    sign = 1 if counts_now else -1
    for tally in tallies:
        if tally in changing:
            counts = KINDS[tally.kind].counts.from_json(tally.counts)
            counts.change(row, [mate for mate in mates if _folded(tally)(mate.id)], sign)
            tally.counts = counts.as_json()
            tally.folded += sign
        tally.version += 1
        tally.save(update_fields=["counts", "folded", "version"])


def label_tallies_rebuild(*, project: Project | None = None) -> int:
    """Count every tally of ``project`` (of every project if None) again from its labels. Returns tallies rebuilt.

    After a bulk load around the services (COPY), or to repair. One project at a time, each in
    its own transaction holding its tally rows' locks (readers of that project wait).
    """
    projects = [project.id] if project is not None else list(Project.objects.order_by("id").values_list("id", flat=True))
    rebuilt = 0
    for project_id in projects:
        for kind_name, kind in KINDS.items():
            with transaction.atomic():
                LabelTally.objects.get_or_create(project_id=project_id, kind=kind_name)
                tally = LabelTally.objects.select_for_update().get(project_id=project_id, kind=kind_name)
                _rebuild(tally, kind, timezone.now() - settle_age())
            rebuilt += 1
    return rebuilt


def label_tallies_check() -> dict:
    """Rebuild every tally that no longer holds as many labels as it folded (labels deleted by a cascade).

    Counts outside the lock, then rebuilds under it only if the row did not move meanwhile (a
    tally that moved is checked on the next run). Returns ``{"checked": n, "rebuilt": n}``.
    """
    checked = rebuilt = 0
    for tally in LabelTally.objects.filter(stale=False).order_by("id"):
        checked += 1
        present = Label.objects.filter(item__project_id=tally.project_id).exclude(**REJECTED).filter(
            Q(id__lte=tally.watermark) | in_ids("id", tally.folded_above)
        ).count()
        if present == tally.folded:
            continue
        with transaction.atomic():
            locked = LabelTally.objects.select_for_update().filter(id=tally.id, version=tally.version).first()
            if locked is not None:
                _rebuild(locked, KINDS[locked.kind], timezone.now() - settle_age())
                rebuilt += 1
    return {"checked": checked, "rebuilt": rebuilt}

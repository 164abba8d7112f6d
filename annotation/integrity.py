"""Denormalised annotation state that can drift from the rows it stands for: find it, repair it.

The services keep these right; anything that writes around them does not:

- ``ComparisonItem.label_count`` against the item's labels. Deleting a user cascades their
  labels (``Label.annotator`` is ``on_delete=CASCADE``) in SQL, without touching the count:
  the item then looks fuller than it is and is never handed out again. Raw SQL, and label
  deletes in the admin before it went through ``label_delete``, do the same.
- A submitted assignment without its label: it holds one of the item's slots for good.
- A label whose assignment is not ``submitted``: an active lease next to a finished label
  holds a second slot, and a skipped one says the work was never done.
- A label without an assignment: its assignment row was deleted (``Label.assignment`` is
  ``SET_NULL``, and the admin used to allow it). The annotator looks as if they had never
  seen the item, is dealt it again, and their submit breaks on one-label-per-annotator.

Each check is one set-based query (correlated subqueries over the ``item`` and
``assignment`` indexes, no per-row Python), so a check of 500k labels is a few scans.
``integrity_repair`` fixes all four in one transaction with a few UPDATEs.
"""
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import Assignment, ComparisonItem, Label, Project
from annotation.progress import progress_recount

EXAMPLES = 5


@dataclass(frozen=True)
class Drift:
    """One invariant checked: how many rows break it (often 0), and a few of them by id."""

    check: str
    description: str
    count: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class IntegrityReport:
    scope: str
    checked: dict[str, int]
    checks: tuple[Drift, ...]

    @property
    def drift(self) -> tuple[Drift, ...]:
        return tuple(check for check in self.checks if check.count)

    @property
    def clean(self) -> bool:
        return not self.drift


def _items(project: Project | None) -> QuerySet:
    return ComparisonItem.objects.all() if project is None else ComparisonItem.objects.filter(project=project)


def _assignments(project: Project | None) -> QuerySet:
    return Assignment.objects.all() if project is None else Assignment.objects.filter(item__project=project)


def _labels(project: Project | None) -> QuerySet:
    return Label.objects.all() if project is None else Label.objects.filter(item__project=project)


def _actual_label_count() -> Coalesce:
    # Correlated per item: counted on the (item, annotator) unique index, no table-wide GROUP BY.
    # Labels a reviewer rejected do not count toward the item (annotation.review).
    labels = (
        Label.objects.filter(item=OuterRef("pk")).exclude(review_status=Label.ReviewStatus.REJECTED)
        .order_by().values("item").annotate(n=Count("id")).values("n")
    )
    return Coalesce(Subquery(labels), 0)


def _miscounted_items(project: Project | None) -> QuerySet:
    return _items(project).annotate(actual=_actual_label_count()).exclude(label_count=F("actual"))


def _submitted_without_label(project: Project | None) -> QuerySet:
    return _assignments(project).filter(status=Assignment.Status.SUBMITTED).exclude(
        Exists(Label.objects.filter(assignment=OuterRef("pk")))
    )


def _labels_with_unsubmitted_assignment(project: Project | None) -> QuerySet:
    # A rejected label's assignment is skipped on purpose (annotation.review): its slot is free.
    return (
        _labels(project).filter(assignment__isnull=False).exclude(assignment__status=Assignment.Status.SUBMITTED)
        .exclude(review_status=Label.ReviewStatus.REJECTED)
    )


def _labels_without_assignment(project: Project | None) -> QuerySet:
    return _labels(project).filter(assignment__isnull=True)


def _drift(check: str, description: str, rows: QuerySet, example) -> Drift:
    count = rows.count()
    examples = tuple(example(row) for row in rows.order_by("id")[:EXAMPLES]) if count else ()
    return Drift(check, description, count, examples)


def integrity_check(*, project: Project | None = None) -> IntegrityReport:
    """Every drifted invariant in ``project`` (or everywhere), with counts and a few ids.

    Reads only; a fixed number of queries whatever the size of the tables.
    """
    checks = (
        _drift(
            "label_count",
            "comparison items whose label_count differs from their number of labels",
            _miscounted_items(project).values("id", "label_count", "actual"),
            lambda row: f"item {row['id']}: label_count {row['label_count']}, labels {row['actual']}",
        ),
        _drift(
            "submitted_without_label",
            "submitted assignments without a label (each holds a slot for good)",
            _submitted_without_label(project).values("id", "item_id", "annotator_id"),
            lambda row: f"assignment {row['id']}: item {row['item_id']}, annotator {row['annotator_id']}",
        ),
        _drift(
            "label_assignment_not_submitted",
            "labels whose assignment is not submitted",
            _labels_with_unsubmitted_assignment(project).values("id", "assignment_id", "assignment__status"),
            lambda row: f"label {row['id']}: assignment {row['assignment_id']} is {row['assignment__status']}",
        ),
        _drift(
            "label_without_assignment",
            "labels without an assignment (the annotator would be dealt the item again)",
            _labels_without_assignment(project).values("id", "item_id", "annotator_id"),
            lambda row: f"label {row['id']}: item {row['item_id']}, annotator {row['annotator_id']}",
        ),
    )
    return IntegrityReport(
        scope="all projects" if project is None else f"project {project.name!r}",
        checked={
            "comparison items": _items(project).count(),
            "assignments": _assignments(project).count(),
            "labels": _labels(project).count(),
        },
        checks=checks,
    )


@transaction.atomic
def integrity_repair(*, project: Project | None = None) -> dict[str, int]:
    """Bring the denormalised state back in line with the labels; returns rows fixed per check.

    Labels are the truth: an orphan label gets its assignment back (submitted), a label's
    assignment is marked submitted, a submitted assignment without a label is skipped
    (as ``label_delete`` leaves it: the slot frees up, the annotator is not dealt the item
    again), and ``label_count`` is recounted. Item rows are locked before they are
    recounted, so a ``label_submit`` in flight (it holds the item lock while it adds
    its label and count) finishes first and is counted once.
    """
    now = timezone.now()
    fixed = {"label_without_assignment": _relink_orphan_labels(project)}

    label_created = Label.objects.filter(assignment=OuterRef("pk")).values("created_at")
    fixed["label_assignment_not_submitted"] = (
        _assignments(project)
        .filter(Exists(Label.objects.filter(assignment=OuterRef("pk")).exclude(review_status=Label.ReviewStatus.REJECTED)))
        .exclude(status=Assignment.Status.SUBMITTED)
        .update(status=Assignment.Status.SUBMITTED, finished_at=Coalesce(Subquery(label_created), now))
    )
    fixed["submitted_without_label"] = _submitted_without_label(project).update(
        status=Assignment.Status.SKIPPED,
        skip_reason="Its label was deleted outside the annotation services (repaired by check_integrity).",
        finished_at=Coalesce(F("finished_at"), now),
    )

    # Lock first (in id order, so two repairs cannot deadlock), then recount in a new statement: under READ
    # COMMITTED that statement sees every label committed by the time the locks were granted.
    list(_miscounted_items(project).select_for_update().order_by("id").values_list("id", flat=True))
    fixed["label_count"] = ComparisonItem.objects.filter(
        id__in=_miscounted_items(project).values("id")
    ).update(label_count=_actual_label_count())
    # The progress counters (annotation.progress) summarise what was just repaired.
    progress_recount(project=project)
    return fixed


def _relink_orphan_labels(project: Project | None) -> int:
    """Give each label without an assignment its (item, annotator) assignment, creating it if gone."""
    orphans = _labels_without_assignment(project)
    count = orphans.count()
    if not count:
        return 0
    own = Assignment.objects.filter(item=OuterRef("item"), annotator=OuterRef("annotator"))
    # Only labels whose (item, annotator) assignment is gone altogether need one created:
    # a list of the orphans, not of the table.
    missing = orphans.exclude(Exists(own)).values_list("item_id", "annotator_id", "display_order", "created_at")
    Assignment.objects.bulk_create(
        [
            Assignment(
                item_id=item_id,
                annotator_id=annotator_id,
                status=Assignment.Status.SUBMITTED,
                display_order=display_order,
                expires_at=created_at,
                finished_at=created_at,
            )
            for item_id, annotator_id, display_order, created_at in missing
        ],
        batch_size=1000,
    )
    # The repair of unsubmitted assignments that follows marks the reused ones submitted.
    _labels_without_assignment(project).update(assignment=Subquery(own.values("id")[:1]))
    return count

"""Progress counters: what an annotator has done and what is left, kept as rows, not counted.

``annotation.selectors.annotator_progress`` answers every next-item, submit and skip. Counting
the annotator's labels and the project's unfinished items there made each request cost more
as the project grew; these counters make it one indexed read. They change in the same
transaction as the row they summarise (label, skip, ``label_count``), through the functions
here, called by ``annotation.services``:

- ``ProjectProgress.unfinished_items``: items with ``label_count < labels_per_item``.
- ``AnnotatorProgress.done_total`` / ``done_today``: the annotator's labels in the project.
- ``AnnotatorProgress.seen_unfinished``: unfinished items the annotator labelled or skipped,
  so "remaining" is ``unfinished_items - seen_unfinished``.

Gold items (``annotation.gold``) are never unfinished: they are not work to finish, so they
are in neither count (their labels still count in ``done_total``).

When an item crosses ``labels_per_item`` (completed by a submit; reopened by an undo or a
deletion), the project's count and ``seen_unfinished`` of everyone who labelled or skipped
it change together. Those rows are locked in id order in one statement, so two such
transactions cannot deadlock; the project's row is always locked last. ``progress_recount``
rebuilds everything from the rows (after ``labels_per_item`` changes or a repair), and a
missing row is counted from the rows when first needed, so bulk-loaded data works too.
"""
from datetime import datetime, time

from django.db import connection
from django.db.models import Count, F, Min, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from annotation.models import AnnotatorProgress, Assignment, ComparisonItem, Label, Project, ProjectProgress, Response

SEEN = (Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED)


def label_count_add(*, item_id: int, delta: int) -> int:
    """Add ``delta`` to the item's ``label_count`` and return the new value, in one statement.

    Takes the item's row lock (held to the end of the caller's transaction). ``RETURNING``
    (PostgreSQL, SQLite >= 3.35) saves reading the row again to learn whether the item has
    just been completed.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ComparisonItem._meta.db_table} SET label_count = label_count + %s WHERE id = %s RETURNING label_count",
            [delta, item_id],
        )
        return cursor.fetchone()[0]


def _start_of_today():
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def annotator_counts(*, project: Project, annotator_id: int) -> dict:
    """The annotator's counters recounted from the rows (a missing row, a recount)."""
    labels = Label.objects.filter(item__project=project, annotator_id=annotator_id).aggregate(
        total=Count("id"), today=Count("id", filter=Q(created_at__gte=_start_of_today())), first=Min("created_at")
    )
    seen = Assignment.objects.filter(
        annotator_id=annotator_id, status__in=SEEN, item__project=project, item__label_count__lt=project.labels_per_item,
        item__gold_ranking__isnull=True,
    ).count()
    return {
        "done_total": labels["total"], "done_today": labels["today"], "day": timezone.localdate(), "seen_unfinished": seen,
        "first_labelled_at": labels["first"],
    }


def unfinished_count(*, project: Project) -> int:
    return ComparisonItem.objects.filter(project=project, label_count__lt=project.labels_per_item, gold_ranking__isnull=True).count()


def progress_record(
    *,
    project: Project,
    annotator_id: int,
    done: int = 0,
    labelled_at=None,
    seen: int = 0,
    item_id: int | None = None,
    item_reopened: int = 0,
) -> None:
    """Apply one event to the counters, inside the caller's transaction, after its writes.

    ``done``: +1 a label by the annotator, -1 one taken back (``labelled_at``: its time).
    ``seen``: change of the annotator's ``seen_unfinished``. ``item_reopened``: -1 the item
    ``item_id`` was just completed, +1 it is short of labels again; the project's
    ``unfinished_items`` and ``seen_unfinished`` of every *other* annotator who labelled or
    skipped it change by that much.
    """
    others: list[int] = []
    if item_reopened:
        others = list(
            Assignment.objects.filter(item_id=item_id, status__in=SEEN)
            .exclude(annotator_id=annotator_id)
            .values_list("annotator_id", flat=True)
        )
        if others:
            # All the rows this transaction will change, own included, locked in id order.
            list(
                AnnotatorProgress.objects.select_for_update()
                .filter(project=project, annotator_id__in=[*others, annotator_id])
                .order_by("id")
                .values_list("id", flat=True)
            )
    if done or seen:
        _own_row_change(project=project, annotator_id=annotator_id, done=done, labelled_at=labelled_at, seen=seen)
    if others:
        AnnotatorProgress.objects.filter(project=project, annotator_id__in=others).update(
            seen_unfinished=Greatest(F("seen_unfinished") + item_reopened, 0)
        )
    if item_reopened:
        ProjectProgress.objects.filter(project=project).update(
            unfinished_items=Greatest(F("unfinished_items") + item_reopened, 0)
        )


def _own_row_change(*, project: Project, annotator_id: int, done: int, labelled_at, seen: int) -> None:
    today = timezone.localdate()
    on_today = done if labelled_at is not None and timezone.localdate(labelled_at) == today else 0
    # SQL: it runs in every submit, and the ORM's CASE/GREATEST update took longer to
    # compile than to run. CASE instead of GREATEST, which SQLite lacks.
    day = connection.ops.adapt_datefield_value(today)
    # NULL leaves first_labelled_at as it is: only a new label can be the first.
    first = connection.ops.adapt_datetimefield_value(labelled_at) if done > 0 else None
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {AnnotatorProgress._meta.db_table} SET
                    seen_unfinished = CASE WHEN seen_unfinished + %s < 0 THEN 0 ELSE seen_unfinished + %s END,
                    done_total = CASE WHEN done_total + %s < 0 THEN 0 ELSE done_total + %s END,
                    done_today = CASE WHEN day = %s
                                      THEN CASE WHEN done_today + %s < 0 THEN 0 ELSE done_today + %s END
                                      ELSE %s END,
                    day = %s,
                    first_labelled_at = COALESCE(first_labelled_at, %s)
                WHERE project_id = %s AND annotator_id = %s""",
            [seen, seen, done, done, day, on_today, on_today, max(on_today, 0), day, first, project.id, annotator_id],
        )
        if cursor.rowcount:
            return
    # The annotator's first label or skip in the project: a row counted from the rows,
    # which this transaction's own writes are already part of. get_or_create settles a
    # race between two tabs (in a savepoint); the loser's event is then added to the
    # winner's row, which could not see it.
    _, created = AnnotatorProgress.objects.get_or_create(
        project=project, annotator_id=annotator_id, defaults=annotator_counts(project=project, annotator_id=annotator_id)
    )
    if not created:
        _own_row_change(project=project, annotator_id=annotator_id, done=done, labelled_at=labelled_at, seen=seen)


def project_items_added(*, project: Project, count: int, responses: int = 0) -> None:
    """``count`` new (unlabelled) items and ``responses`` new responses; a project without its row gets one, counted."""
    if ProjectProgress.objects.filter(project=project).update(
        unfinished_items=F("unfinished_items") + count, responses=F("responses") + responses
    ):
        return
    ProjectProgress.objects.get_or_create(
        project=project,
        defaults={"unfinished_items": unfinished_count(project=project), "responses": response_count(project=project)},
    )


def response_count(*, project: Project) -> int:
    return Response.objects.filter(prompt__project=project).count()


def project_response_count(project: Project) -> int:
    """How many responses ``project`` has: its counter row, or a count when there is none yet."""
    stored = ProjectProgress.objects.filter(project=project).values_list("responses", flat=True).first()
    return stored if stored is not None else response_count(project=project)


def progress_recount(*, project: Project | None = None) -> None:
    """Count every counter of ``project`` (of every project if None) again from the rows.

    After ``labels_per_item`` changes (items finish or reopen without a label being
    written) or after a repair of ``label_count``. A fixed number of queries, whatever the
    number of projects, annotators or labels. Call inside a transaction: the counter rows
    are locked (annotators' in id order, then the projects'), as ``progress_record`` does.
    """
    scope = {} if project is None else {"project": project}
    item_scope = {} if project is None else {"item__project": project}
    rows = list(AnnotatorProgress.objects.select_for_update().filter(**scope).order_by("id"))
    today = timezone.localdate()
    labels = {
        (row["item__project_id"], row["annotator_id"]): row
        for row in Label.objects.filter(**item_scope)
        .values("item__project_id", "annotator_id")
        .annotate(total=Count("id"), today=Count("id", filter=Q(created_at__gte=_start_of_today())), first=Min("created_at"))
        .order_by()
    }
    seen = {
        (row["item__project_id"], row["annotator_id"]): row["count"]
        for row in Assignment.objects.filter(
            status__in=SEEN, item__label_count__lt=F("item__project__labels_per_item"), item__gold_ranking__isnull=True,
            **item_scope,
        )
        .values("item__project_id", "annotator_id")
        .annotate(count=Count("id"))
        .order_by()
    }

    def fill(row: AnnotatorProgress) -> AnnotatorProgress:
        counted = labels.get((row.project_id, row.annotator_id), {})
        row.done_total, row.done_today, row.day = counted.get("total", 0), counted.get("today", 0), today
        row.seen_unfinished = seen.get((row.project_id, row.annotator_id), 0)
        row.first_labelled_at = counted.get("first")
        return row

    AnnotatorProgress.objects.bulk_update(
        [fill(row) for row in rows], ["done_total", "done_today", "day", "seen_unfinished", "first_labelled_at"]
    )
    have = {(row.project_id, row.annotator_id) for row in rows}
    AnnotatorProgress.objects.bulk_create(
        [
            fill(AnnotatorProgress(project_id=project_id, annotator_id=annotator_id))
            for project_id, annotator_id in (set(labels) | set(seen)) - have
        ],
        ignore_conflicts=True,
    )

    unfinished = dict(
        ComparisonItem.objects.filter(label_count__lt=F("project__labels_per_item"), gold_ranking__isnull=True, **scope)
        .values("project_id")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("project_id", "count")
    )
    project_ids = [project.id] if project is not None else list(Project.objects.values_list("id", flat=True))
    existing = list(ProjectProgress.objects.select_for_update().filter(project_id__in=project_ids).order_by("project_id"))
    responses = dict(
        Response.objects.filter(**({} if project is None else {"prompt__project": project}))
        .values("prompt__project_id")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("prompt__project_id", "count")
    )
    for row in existing:
        row.unfinished_items = unfinished.get(row.project_id, 0)
        row.responses = responses.get(row.project_id, 0)
    ProjectProgress.objects.bulk_update(existing, ["unfinished_items", "responses"])
    missing = set(project_ids) - {row.project_id for row in existing}
    ProjectProgress.objects.bulk_create(
        [
            ProjectProgress(
                project_id=project_id,
                unfinished_items=unfinished.get(project_id, 0),
                responses=responses.get(project_id, 0),
            )
            for project_id in missing
        ],
        ignore_conflicts=True,
    )

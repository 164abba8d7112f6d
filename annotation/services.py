"""Writes for the annotation side: importing data, submitting labels, skipping.

Each service is keyword-only and atomic; it raises a ``config.errors.DomainError``
with a sentence for the user and changes nothing when it refuses.
"""
import itertools
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotation.assignment import ORDERINGS, assignment_still_holds_slot, lease_duration
from annotation.importing import MAX_ERRORS_REPORTED, LineError, ImportValidationError, item_gold_ranking, parse_jsonl
from annotation.model_verdict import model_verdict_for
from annotation.rendering import render_markdown
from annotation.sql_rows import columns, instances, lock_clause
from annotation.submission import build_submission, check_seconds_spent
from annotation.models import (
    Assignment,
    ComparisonItem,
    ComparisonItemResponse,
    ImportRecord,
    Label,
    Project,
    ProjectProgress,
    Prompt,
    Response,
)
from annotation.progress import label_count_add, progress_record, progress_recount, project_items_added
from annotation.tallies import label_row, label_tally_change_record
from config.errors import ConflictError, DomainError, NotFoundError


@dataclass(frozen=True)
class ImportSummary:
    prompts: int
    responses: int
    items: int

    def as_dict(self):
        return {"prompts": self.prompts, "responses": self.responses, "items": self.items}


CRITERION_SCALES = (5, 7)


def _checked_criteria(criteria) -> list[dict]:
    if not isinstance(criteria, list):
        raise DomainError("criteria must be a list.", fields={"criteria": ["must be a list"]})
    checked, seen = [], set()
    for index, criterion in enumerate(criteria):
        path = f"criteria[{index}]"
        if not isinstance(criterion, dict) or not str(criterion.get("key", "")).isidentifier():
            raise DomainError(f"{path}.key must be a short identifier such as 'helpfulness'.", fields={path: ["bad key"]})
        if criterion["key"] in seen:
            raise DomainError(f"{path}.key '{criterion['key']}' appears twice.", fields={path: ["duplicate key"]})
        scale = criterion.get("scale", 5)
        if scale not in CRITERION_SCALES:
            raise DomainError(f"{path}.scale must be 5 or 7.", fields={path: ["scale must be 5 or 7"]})
        seen.add(criterion["key"])
        checked.append(
            {
                "key": criterion["key"],
                "label": str(criterion.get("label") or criterion["key"].replace("_", " ").capitalize()),
                "scale": scale,
                "required": bool(criterion.get("required", False)),
            }
        )
    return checked


def _check_project_settings(
    *,
    labels_per_item: int,
    label_format: str,
    rationale_mode: str,
    selection_order: str = "sequential",
    status: str = Project.Status.ACTIVE,
    gold_rate: float = 0.0,
    uncertainty_random_share: float = 0.2,
) -> None:
    if status not in Project.Status.values:
        raise DomainError("status must be active, paused or archived.", fields={"status": ["unknown status"]})
    # NaN passes both comparisons of a range check; the database would then refuse it (a 500).
    for name, share in (("gold_rate", gold_rate), ("uncertainty_random_share", uncertainty_random_share)):
        if not isinstance(share, (int, float)) or not math.isfinite(share) or not 0 <= share <= 1:
            raise DomainError(f"{name} must be a number from 0 to 1.", fields={name: ["0 to 1"]})
    if selection_order not in ORDERINGS:
        raise DomainError(
            f"selection_order must be one of {', '.join(sorted(ORDERINGS))}.",
            fields={"selection_order": ["unknown ordering"]},
        )
    if not 1 <= labels_per_item <= 50:
        raise DomainError("labels_per_item must be between 1 and 50.", fields={"labels_per_item": ["1 to 50"]})
    if label_format not in Project.LabelFormat.values:
        raise DomainError("label_format must be 'pairwise' or 'ranking'.", fields={"label_format": ["unknown format"]})
    if rationale_mode not in Project.RationaleMode.values:
        raise DomainError("rationale_mode must be off, optional or required.", fields={"rationale_mode": ["unknown"]})


def project_create(
    *,
    name: str,
    guidelines: str = "",
    labels_per_item: int = 1,
    annotators=(),
    reviewers=(),
    label_format: str = Project.LabelFormat.PAIRWISE,
    criteria: list[dict] | None = None,
    rationale_mode: str = Project.RationaleMode.OPTIONAL,
    selection_order: str = "sequential",
    status: str = Project.Status.ACTIVE,
    gold_rate: float = 0.0,
    uncertainty_random_share: float = 0.2,
    reveal_model_verdict: bool = False,
) -> Project:
    _check_project_settings(
        labels_per_item=labels_per_item,
        label_format=label_format,
        rationale_mode=rationale_mode,
        selection_order=selection_order,
        status=status,
        gold_rate=gold_rate,
        uncertainty_random_share=uncertainty_random_share,
    )
    if Project.objects.filter(name=name).exists():
        raise ConflictError(f"A project named {name!r} already exists.", fields={"name": ["already taken"]})
    with transaction.atomic():
        project = Project.objects.create(
            name=name,
            guidelines=guidelines,
            labels_per_item=labels_per_item,
            label_format=label_format,
            criteria=_checked_criteria(criteria or []),
            rationale_mode=rationale_mode,
            selection_order=selection_order,
            status=status,
            gold_rate=gold_rate,
            uncertainty_random_share=uncertainty_random_share,
            reveal_model_verdict=bool(reveal_model_verdict),
        )
        project.annotators.add(*annotators)
        project.reviewers.add(*reviewers)
        ProjectProgress.objects.create(project=project, responses=0)
    return project


PROJECT_EDITABLE_FIELDS = (
    "name", "guidelines", "labels_per_item", "label_format", "criteria", "rationale_mode", "selection_order",
)
# Also changed by project_update, but kept off the Django admin's form (annotation.admin builds
# it from PROJECT_EDITABLE_FIELDS): status, the gold rate, the uncertainty order's random share
# and revealing the model's verdict are the console's, with its checks and explanations.
PROJECT_CONSOLE_FIELDS = ("status", "gold_rate", "uncertainty_random_share", "reveal_model_verdict")


def project_update(*, project: Project, annotators=None, reviewers=None, **changes) -> Project:
    """Change a project's settings; ``annotators`` / ``reviewers`` (if given) replace those lists.

    The label format is fixed once items exist: they were built for it (pairs
    versus one item per prompt). An archived project is read-only: the only change it
    takes is its ``status`` (unarchiving), alone, so nobody edits a project that
    annotators can no longer see by accident.
    """
    unknown = set(changes) - set(PROJECT_EDITABLE_FIELDS) - set(PROJECT_CONSOLE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown project fields: {sorted(unknown)}")
    if project.status == Project.Status.ARCHIVED:
        others = sorted(set(changes) - {"status"}) + [
            name for name, value in (("annotators", annotators), ("reviewers", reviewers)) if value is not None
        ]
        if others:
            raise ConflictError(
                "This project is archived and read-only: unarchive it before changing its settings.",
                fields={name: ["the project is archived"] for name in others},
            )
    if "label_format" in changes and changes["label_format"] != project.label_format and project.items.exists():
        raise ConflictError(
            "The label format cannot change once items are imported.", fields={"label_format": ["items exist"]}
        )
    if "name" in changes and Project.objects.filter(name=changes["name"]).exclude(id=project.id).exists():
        raise ConflictError(f"A project named {changes['name']!r} already exists.", fields={"name": ["already taken"]})
    if "criteria" in changes:
        changes["criteria"] = _checked_criteria(changes["criteria"])
    for name, value in changes.items():
        setattr(project, name, value)
    _check_project_settings(
        labels_per_item=project.labels_per_item,
        label_format=project.label_format,
        rationale_mode=project.rationale_mode,
        selection_order=project.selection_order,
        status=project.status,
        gold_rate=project.gold_rate,
        uncertainty_random_share=project.uncertainty_random_share,
    )
    wanted_changed = "labels_per_item" in changes and Project.objects.filter(id=project.id).exclude(
        labels_per_item=changes["labels_per_item"]
    ).exists()
    with transaction.atomic():
        project.save()
        if annotators is not None:
            project.annotators.set(annotators)
        if reviewers is not None:
            project.reviewers.set(reviewers)
        if wanted_changed:
            # Items finish or reopen without a label being written: count again.
            progress_recount(project=project)
    return project


def project_import_jsonl(
    *,
    project: Project,
    lines: Iterable[str | bytes],
    source: str = "import",
    uploaded_by=None,
    record_source: str | None = None,
) -> ImportSummary:
    """Import prompts and responses, all or nothing, and leave an ``ImportRecord`` either way.

    In a pairwise project each prompt with K responses becomes C(K, 2) comparison
    items; in a ranking project, one item holding all K. Raises
    ImportValidationError (naming line and field) if any line is bad or an
    external_id already exists in the project; nothing is written then but the failed
    record. An archived project (read-only) refuses with a ConflictError, also recorded.

    ``source`` names the file in error messages; ``record_source`` (default ``source``) is
    what the history shows, e.g. the command that imported. The success record is written
    in the import's transaction, so history and rows agree; a failure's after the rollback.
    """
    counted = _CountedLines(lines)
    record = ImportRecord(
        project=project,
        uploaded_by=uploaded_by,
        source=_storable_text(record_source or source, ImportRecord._meta.get_field("source").max_length),
        status=ImportRecord.Status.SUCCEEDED,
    )
    try:
        if project.status == Project.Status.ARCHIVED:
            raise ConflictError(
                "This project is archived and read-only: unarchive it before importing. Nothing was imported.",
                fields={"file": ["the project is archived"]},
            )
        return _project_import_rows(project=project, lines=counted, source=source, record=record)
    except (ImportValidationError, ConflictError) as exc:
        project_import_failure_record(
            project=project, uploaded_by=uploaded_by, source=record.source, size_bytes=counted.size, error=exc
        )
        raise


def project_import_failure_record(
    *, project: Project, uploaded_by, source: str, size_bytes: int, error: DomainError
) -> ImportRecord:
    """Write the history row of an import that was refused (bad lines, too large, archived project).

    Call it outside the refused import's transaction, which rolled back. The first
    MAX_ERRORS_REPORTED errors are kept; an error that names no line is kept as one entry
    with ``line`` null.
    """
    errors = [
        {key: _storable_text(str(value), 300) if isinstance(value, str) else value for key, value in entry.items()}
        for entry in list(error.extra.get("errors") or [])[:MAX_ERRORS_REPORTED]
    ]
    if not errors:
        errors = [{"line": None, "field": next(iter(error.fields), "(file)"), "message": _storable_text(error.message, 300)}]
    return ImportRecord.objects.create(
        project=project,
        uploaded_by=uploaded_by,
        source=_storable_text(source, ImportRecord._meta.get_field("source").max_length),
        status=ImportRecord.Status.FAILED,
        size_bytes=max(size_bytes, 0),
        error_count=max(int(error.extra.get("error_count") or 0), len(errors)),
        errors=errors,
    )


class _CountedLines:
    """Iterates ``lines`` once and counts their bytes on the way: an upload's size without a second read."""

    def __init__(self, lines: Iterable[str | bytes]):
        self._lines = lines
        self.size = 0

    def __iter__(self):
        for line in self._lines:
            self.size += len(line) if isinstance(line, bytes) else len(line.encode("utf-8", "surrogatepass"))
            yield line


def _storable_text(text: str, limit: int) -> str:
    # File names come from the client: PostgreSQL stores neither NUL nor a lone surrogate.
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")[:limit]


def _project_import_rows(*, project: Project, lines: "_CountedLines", source: str, record: ImportRecord) -> ImportSummary:
    parsed = parse_jsonl(lines, source=source)

    def duplicates_error() -> ImportValidationError | None:
        """An error naming each line whose external_id the project already has, or None."""
        ids = [p.external_id for p in parsed]
        existing = set()
        for start in range(0, len(ids), 1000):  # SQLite allows only so many parameters per query
            existing.update(
                Prompt.objects.filter(project=project, external_id__in=ids[start : start + 1000]).values_list(
                    "external_id", flat=True
                )
            )
        if not existing:
            return None
        duplicates = [
            LineError(p.line, "external_id", f"'{p.external_id}' is already in project '{project.name}'")
            for p in parsed
            if p.external_id in existing
        ]
        return ImportValidationError(source, duplicates, error_count=len(duplicates))

    # Markdown is rendered here, once, not on every next-item; before the lock, like parsing.
    rendered = [
        (
            [render_markdown(message["content"]) for message in parsed_prompt.conversation],
            [render_markdown(response.text) for response in parsed_prompt.responses],
        )
        for parsed_prompt in parsed
    ]

    response_count = item_count = gold_items = 0
    try:
        with transaction.atomic():
            # Imports into one project take turns on the project's row. Without the lock two
            # uploads of the same file both pass the duplicate check below, and the loser dies
            # on the unique constraint (a 500 naming no line). With it, the second waits for the
            # first to commit, then (each statement reading fresh under READ COMMITTED) sees
            # its prompts and is told which lines are duplicates. Catching IntegrityError
            # instead would also work, but only after doing and undoing all the loser's writes.
            # Parsing happens before, so the lock is held only for the writes.
            Project.objects.select_for_update().filter(id=project.id).values_list("id", flat=True).first()
            if duplicates := duplicates_error():
                raise duplicates
            for parsed_prompt, (conversation_html, responses_html) in zip(parsed, rendered, strict=True):
                prompt = Prompt.objects.create(
                    project=project,
                    external_id=parsed_prompt.external_id,
                    conversation=parsed_prompt.conversation,
                    conversation_html=conversation_html,
                    metadata=parsed_prompt.metadata,
                )
                responses = Response.objects.bulk_create(
                    [
                        Response(prompt=prompt, text=r.text, html=html, model_name=r.model_name, metadata=r.metadata)
                        for r, html in zip(parsed_prompt.responses, responses_html, strict=True)
                    ]
                )
                response_count += len(responses)
                if project.label_format == Project.LabelFormat.RANKING:
                    groups = [responses]
                else:
                    groups = list(itertools.combinations(responses, 2))
                for group in groups:
                    gold = item_gold_ranking(parsed_prompt.gold, responses, group)
                    gold_items += gold is not None  # not work to finish: left out of the counters
                    item = ComparisonItem.objects.create(project=project, prompt=prompt, gold_ranking=gold)
                    ComparisonItemResponse.objects.bulk_create(
                        [ComparisonItemResponse(item=item, response=r, slot=slot) for slot, r in enumerate(group)]
                    )
                    item_count += 1
            record.size_bytes, record.prompts, record.responses, record.items = (
                lines.size, len(parsed), response_count, item_count
            )
            record.save()
            # Last, so the counter row is locked only for the commit.
            project_items_added(project=project, count=item_count - gold_items, responses=response_count)
    except IntegrityError:
        # A prompt written some other way than an import (the admin, a shell) can still race
        # in past the lock: name the lines it clashes with, as the check above would have.
        if duplicates := duplicates_error():
            raise duplicates from None
        raise
    return ImportSummary(prompts=len(parsed), responses=response_count, items=item_count)


def _locked_active_assignment(*, assignment_id: int, annotator) -> Assignment:
    """The caller's assignment, locked, with its item and project loaded; NotFoundError if not theirs.

    SQL (``annotation.sql_rows``): every submit, skip and heartbeat runs it. ``OF`` the
    assignment only: without it PostgreSQL also locks the joined item and project rows, and
    every submit in a project queued on the project's row.
    """
    sql = f"""SELECT {columns(Assignment, "lease")}, {columns(ComparisonItem, "item")}, {columns(Project, "project")}
        FROM {Assignment._meta.db_table} lease
        JOIN {ComparisonItem._meta.db_table} item ON item.id = lease.item_id
        JOIN {Project._meta.db_table} project ON project.id = item.project_id
        WHERE lease.id = %s AND lease.annotator_id = %s
        {lock_clause(of="lease")}"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [assignment_id, annotator.id])
        row = cursor.fetchone()
    if row is None:
        raise NotFoundError("No such assignment for this user.")
    assignment, item, project = instances(row, (Assignment, ComparisonItem, Project))
    item.project = project
    assignment.item = item
    return assignment


# Rows per transaction when priorities are written: a submit or claim on one of them waits at
# most for one batch (milliseconds), never for a whole project.
PRIORITY_BATCH = 500


def item_priorities_store(*, priorities: dict[int, float]) -> int:
    """Write ``ComparisonItem.model_priority`` (computed by ``training.priorities``). Returns rows changed.

    In batches of ``PRIORITY_BATCH``, each its own transaction and one ``UPDATE ... FROM
    (VALUES ...)`` statement: Django's ``bulk_update`` spent about 0.3 ms an item building its
    CASE expression, minutes at 500,000 items. A row whose priority is already the one given
    is left alone (no new row version, no row lock): after a top-up most priorities are
    unchanged. Items deleted meanwhile are simply not written.
    """
    table = ComparisonItem._meta.db_table
    changed = 0
    rows = sorted(priorities.items())
    for start in range(0, len(rows), PRIORITY_BATCH):
        batch = rows[start : start + PRIORITY_BATCH]
        # Typed in the first row, so PostgreSQL reads every row's values as these types.
        values = ", ".join(["(CAST(%s AS bigint), CAST(%s AS double precision))"] + ["(%s, %s)"] * (len(batch) - 1))
        # VALUES names its columns column1, column2 on PostgreSQL and SQLite alike; a column
        # list (AS new (id, priority)) or a WITH would not run on SQLite or lose its rowcount.
        sql = (
            f"UPDATE {table} SET model_priority = new.column2 FROM (VALUES {values}) AS new "
            f"WHERE {table}.id = new.column1 AND {table}.model_priority <> new.column2"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [value for item_id, priority in batch for value in (item_id, float(priority))])
            changed += cursor.rowcount
    return changed


def label_submit(
    *,
    assignment_id: int,
    annotator,
    client_id: uuid.UUID,
    choice: str | None = None,
    ranking=None,
    strength: int | None = None,
    ratings=None,
    flags=None,
    rationale: str = "",
    seconds_spent: float = 0.0,
) -> tuple[Label, bool]:
    """Turn a lease into a label. Returns ``(label, created)``.

    ``choice`` (pairwise: A, B, tie, both_bad) or ``ranking`` (ranking projects:
    groups of positions, best first) is checked against the project's settings by
    ``annotation.submission.build_submission``. Idempotent: a retry with the same
    ``client_id`` returns the first label with ``created=False``. Holds the
    assignment row lock, then the item row lock. Touches nothing but the
    database: training notices new labels on its own schedule
    (``training.reconciler``), so a broker outage never fails a submit.
    """
    seconds_spent = check_seconds_spent(seconds_spent)
    previous = Label.objects.filter(annotator=annotator, client_id=client_id).first()
    if previous is not None:
        return previous, False

    now = timezone.now()
    try:
        with transaction.atomic():
            assignment = _locked_active_assignment(assignment_id=assignment_id, annotator=annotator)
            if assignment.status != Assignment.Status.ACTIVE:
                # A retry that waited on this lock while the first attempt committed: look
                # again under the lock, or it would answer 409 to its own label.
                previous = Label.objects.filter(annotator=annotator, client_id=client_id).first()
                if previous is not None:
                    return previous, False
                raise ConflictError(f"This item was already {assignment.status}.")
            project = assignment.item.project
            submission = build_submission(
                label_format=project.label_format,
                criteria=project.criteria,
                rationale_mode=project.rationale_mode,
                display_order=assignment.display_order,
                choice=choice,
                ranking=ranking,
                strength=strength,
                ratings=ratings,
                flags=flags,
                rationale=rationale,
            )
            if assignment.expires_at <= now:
                # A lapsed lease may have lost its slot to a claim, which counts slots under
                # the item's row lock: take that lock to check. An unexpired lease holds its
                # slot by definition, so the common case skips this round trip; the
                # label_count UPDATE below still takes the item lock after the assignment's.
                ComparisonItem.objects.select_for_update().filter(id=assignment.item_id).values_list("id").first()
                if not assignment_still_holds_slot(assignment, now=now):
                    raise ConflictError("Your lease on this item expired and someone else took it.")
            label = Label.objects.create(
                item=assignment.item,
                annotator=annotator,
                assignment=assignment,
                client_id=client_id,
                ranking=submission.ranking,
                is_tie=submission.is_tie,
                both_bad=submission.both_bad,
                strength=submission.strength,
                ratings=submission.ratings,
                flags=submission.flags,
                rationale=submission.rationale,
                seconds_spent=seconds_spent,
                display_order=assignment.display_order,
            )
            assignment.status = Assignment.Status.SUBMITTED
            assignment.finished_at = now
            assignment.save(update_fields=["status", "finished_at"])
            count = label_count_add(item_id=assignment.item_id, delta=1)
            progress_record(
                project=project,
                annotator_id=annotator.id,
                done=1,
                labelled_at=now,
                # A gold item is never unfinished (annotation.gold): its labels leave the counters alone.
                seen=1 if count < project.labels_per_item and assignment.item.gold_ranking is None else 0,
                item_id=assignment.item_id,
                item_reopened=-1 if count == project.labels_per_item and assignment.item.gold_ranking is None else 0,
            )
    except IntegrityError:
        # A concurrent retry with the same client_id won the race: return its label.
        previous = Label.objects.filter(annotator=annotator, client_id=client_id).first()
        if previous is None:
            raise
        return previous, False
    return label, True


def label_undo(*, label_id: int, annotator) -> Assignment:
    """Take back one's own label within LABEL_UNDO_SECONDS; the item's lease reopens.

    Returns the reopened assignment (same display order, fresh lease). The slot was
    held by the label, so reopening it cannot over-assign the item.
    """
    with transaction.atomic():
        label = Label.objects.select_for_update(of=("self", "assignment")).select_related("assignment").filter(
            id=label_id, annotator=annotator, assignment__isnull=False
        ).first()
        if label is None:
            raise NotFoundError("No such label for this user.")
        if label.review_status != Label.ReviewStatus.UNREVIEWED:
            # A reviewer decided on it (a rejection already took it out of the item's count).
            raise ConflictError("A reviewer has already decided on this label; it can no longer be undone.")
        age = (timezone.now() - label.created_at).total_seconds()
        if age > settings.LABEL_UNDO_SECONDS:
            raise ConflictError(f"Labels can be undone for {settings.LABEL_UNDO_SECONDS} seconds; this one is older.")
        # The submit answered with the model's verdict where the project reveals one: a label
        # changed after seeing it would follow the model's, the bias the verdict waits to avoid.
        labelled_project = Project.objects.get(items=label.item_id)
        if model_verdict_for(project=labelled_project, label=label) is not None:
            raise ConflictError(
                "You have seen the reward model's verdict on this label, so it cannot be undone.",
                fields={"label": ["verdict already shown"]},
            )
        assignment = label.assignment
        undone = label_row(label)
        label.delete()
        count = label_count_add(item_id=assignment.item_id, delta=-1)
        undone_item = ComparisonItem.objects.select_related("project").get(id=assignment.item_id)
        project = undone_item.project
        # 0 for a gold item: never unfinished (annotation.gold), so neither seen nor reopened.
        wanted = project.labels_per_item if undone_item.gold_ranking is None else 0
        # Before the undo the item had count + 1 labels: this annotator's item counted as
        # seen if that was short of wanted; if it was exactly wanted, the item reopens.
        progress_record(
            project=project,
            annotator_id=annotator.id,
            done=-1,
            labelled_at=label.created_at,
            seen=-1 if count + 1 < wanted else 0,
            item_id=assignment.item_id,
            item_reopened=1 if count + 1 == wanted else 0,
        )
        assignment.status = Assignment.Status.ACTIVE
        assignment.finished_at = None
        assignment.expires_at = timezone.now() + lease_duration()
        assignment.save(update_fields=["status", "finished_at", "expires_at"])
        # Last: it waits for a tally fold in progress (see annotation.tallies).
        label_tally_change_record(project_id=project.id, label=undone, counts_now=False)
    return assignment


def assignment_skip(*, assignment_id: int, annotator, reason: str = "") -> Assignment:
    """Give the item back to the pool for others; this annotator will not see it again."""
    with transaction.atomic():
        assignment = _locked_active_assignment(assignment_id=assignment_id, annotator=annotator)
        if assignment.status != Assignment.Status.ACTIVE:
            raise ConflictError(f"This item was already {assignment.status}.")
        assignment.status = Assignment.Status.SKIPPED
        assignment.skip_reason = reason[:2000]
        assignment.finished_at = timezone.now()
        assignment.save(update_fields=["status", "skip_reason", "finished_at"])
        # Under the item's row lock, so a submit completing the item at the same moment
        # either sees this skip (and counts it) or has committed before we read.
        count = ComparisonItem.objects.select_for_update().filter(id=assignment.item_id).values_list(
            "label_count", flat=True
        ).first()
        project = assignment.item.project
        if count is not None and count < project.labels_per_item and assignment.item.gold_ranking is None:
            progress_record(project=project, annotator_id=annotator.id, seen=1)
    return assignment


def assignment_heartbeat(*, assignment_id: int, annotator) -> Assignment:
    """Extend an open lease while the annotator's page is open."""
    with transaction.atomic():
        assignment = _locked_active_assignment(assignment_id=assignment_id, annotator=annotator)
        if assignment.status != Assignment.Status.ACTIVE:
            raise ConflictError(f"This item was already {assignment.status}.")
        ComparisonItem.objects.select_for_update().filter(id=assignment.item_id).first()
        now = timezone.now()
        if not assignment_still_holds_slot(assignment, now=now):
            raise ConflictError("Your lease on this item expired and someone else took it.")
        assignment.expires_at = now + lease_duration()
        assignment.save(update_fields=["expires_at"])
    return assignment


def label_delete(*, label_id: int) -> Assignment | None:
    """Remove a label (an administrator's decision); the item's count and slots stay right.

    ``label_count`` is recounted under the item's row lock, not decremented, so a count
    that had already drifted comes out right too. The label's assignment becomes
    ``skipped`` rather than being deleted: a submitted assignment holds a slot even
    without its label, and a skipped one frees it for someone else while still marking
    the item as seen by its annotator. A label is removed because it is wrong or its
    author is not trusted, so dealing that person the item again (which deleting the
    assignment would do) gives neither a fresh nor an independent judgement. Returns the
    assignment, ``None`` if the label had none. Locks label and assignment in one
    statement, as ``label_undo`` does, then the item row, as ``label_submit`` does.
    """
    with transaction.atomic():
        label = (
            Label.objects.select_for_update(of=("self", "assignment"))
            .select_related("assignment")
            .filter(id=label_id, assignment__isnull=False)
            .first()
        )
        if label is None:
            # Its assignment row was deleted (Label.assignment is SET_NULL): only the label to lock.
            label = Label.objects.select_for_update().filter(id=label_id, assignment__isnull=True).first()
        if label is None:
            raise NotFoundError("No such label.")
        item_id, assignment = label.item_id, label.assignment
        item = ComparisonItem.objects.select_for_update().select_related("project").filter(id=item_id).first()
        deleted = label_row(label)
        label.delete()
        # Rejected labels do not count toward the item (annotation.review).
        count = Label.objects.filter(item_id=item_id).exclude(review_status=Label.ReviewStatus.REJECTED).count()
        ComparisonItem.objects.filter(id=item_id).update(label_count=count)
        if assignment is not None:
            assignment.status = Assignment.Status.SKIPPED
            assignment.skip_reason = f"Label {label_id} was deleted by an administrator."
            assignment.finished_at = assignment.finished_at or timezone.now()
            assignment.save(update_fields=["status", "skip_reason", "finished_at"])
        wanted = item.project.labels_per_item
        ordinary = item.gold_ranking is None  # a gold item is never unfinished (annotation.gold)
        was_open, now_open = ordinary and item.label_count < wanted, ordinary and count < wanted
        progress_record(
            project=item.project,
            annotator_id=label.annotator_id,
            done=-1,
            labelled_at=label.created_at,
            # The author's assignment stays seen (submitted, now skipped) if it still exists.
            seen=(now_open - was_open) if assignment is not None else 0,
            item_id=item_id,
            item_reopened=now_open - was_open,
        )
        # Last: it waits for a tally fold in progress (see annotation.tallies). A rejected label
        # was out of the tallies already.
        if label.review_status != Label.ReviewStatus.REJECTED:
            label_tally_change_record(project_id=item.project_id, label=deleted, counts_now=False)
    return assignment


def stored_html_render(*, project: Project | None = None, batch_size: int = 500) -> int:
    """Render every stored prompt and response HTML again with today's ``render_markdown``.

    The HTML is rendered once, at import; after the renderer or its allow-list changes (an
    nh3 or Markdown upgrade, a tightened rule) rows rendered before keep the old output until
    this runs. Batches of ``batch_size`` rows, each its own short transaction, so annotators
    are never held up. Returns the number of rows written.
    """
    prompts = Prompt.objects.all() if project is None else Prompt.objects.filter(project=project)
    responses = Response.objects.all() if project is None else Response.objects.filter(prompt__project=project)
    written = 0
    for rows, field, render in (
        (prompts.only("id", "conversation"), "conversation_html",
         lambda row: [render_markdown(message.get("content", "")) for message in row.conversation]),
        (responses.only("id", "text"), "html", lambda row: render_markdown(row.text)),
    ):
        batch = []
        for row in rows.order_by("id").iterator(chunk_size=batch_size):
            setattr(row, field, render(row))
            batch.append(row)
            if len(batch) == batch_size:
                written += _bulk_write(batch, field)
                batch = []
        written += _bulk_write(batch, field)
    return written


def _bulk_write(rows: list, field: str) -> int:
    if not rows:
        return 0
    with transaction.atomic():
        type(rows[0]).objects.bulk_update(rows, [field])
    return len(rows)

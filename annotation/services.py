"""Writes for the annotation side: importing data, submitting labels, skipping.

Each service is keyword-only and atomic; it raises a ``config.errors.DomainError``
with a sentence for the user and changes nothing when it refuses.
"""
import itertools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.assignment import assignment_still_holds_slot, lease_duration
from annotation.importing import LineError, ImportValidationError, parse_jsonl
from annotation.models import Assignment, ComparisonItem, ComparisonItemResponse, Label, Project, Prompt, Response
from config.errors import ConflictError, DomainError, NotFoundError


@dataclass(frozen=True)
class ImportSummary:
    prompts: int
    responses: int
    items: int

    def as_dict(self):
        return {"prompts": self.prompts, "responses": self.responses, "items": self.items}


def project_create(*, name: str, guidelines: str = "", labels_per_item: int = 1, annotators=()) -> Project:
    if not 1 <= labels_per_item <= 50:
        raise DomainError("labels_per_item must be between 1 and 50.", fields={"labels_per_item": ["1 to 50"]})
    with transaction.atomic():
        project = Project.objects.create(name=name, guidelines=guidelines, labels_per_item=labels_per_item)
        project.annotators.add(*annotators)
    return project


def project_import_jsonl(*, project: Project, lines: Iterable[str | bytes], source: str = "import") -> ImportSummary:
    """Import prompts and responses, all or nothing.

    Each prompt with K responses becomes C(K, 2) pairwise comparison items. Raises
    ImportValidationError (naming line and field) if any line is bad or an
    external_id already exists in the project; nothing is written then.
    """
    parsed = parse_jsonl(lines, source=source)
    existing = set(
        Prompt.objects.filter(project=project, external_id__in=[p.external_id for p in parsed]).values_list(
            "external_id", flat=True
        )
    )
    if existing:
        raise ImportValidationError(
            source,
            [
                LineError(p.line, "external_id", f"'{p.external_id}' is already in project '{project.name}'")
                for p in parsed
                if p.external_id in existing
            ],
        )

    response_count = item_count = 0
    with transaction.atomic():
        for parsed_prompt in parsed:
            prompt = Prompt.objects.create(
                project=project,
                external_id=parsed_prompt.external_id,
                conversation=parsed_prompt.conversation,
                metadata=parsed_prompt.metadata,
            )
            responses = Response.objects.bulk_create(
                [
                    Response(prompt=prompt, text=r.text, model_name=r.model_name, metadata=r.metadata)
                    for r in parsed_prompt.responses
                ]
            )
            response_count += len(responses)
            for pair in itertools.combinations(responses, 2):
                item = ComparisonItem.objects.create(project=project, prompt=prompt)
                ComparisonItemResponse.objects.bulk_create(
                    [ComparisonItemResponse(item=item, response=r, slot=slot) for slot, r in enumerate(pair)]
                )
                item_count += 1
    return ImportSummary(prompts=len(parsed), responses=response_count, items=item_count)


CHOICES = ("A", "B", "tie")


def _ranking_for_choice(choice: str, display_order: list[int]) -> list[list[int]]:
    if choice == "tie":
        return [list(display_order)]
    left, right = display_order[0], display_order[1]
    return [[left], [right]] if choice == "A" else [[right], [left]]


def _locked_active_assignment(*, assignment_id: int, annotator) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update()
        .select_related("item__project")
        .filter(id=assignment_id, annotator=annotator)
        .first()
    )
    if assignment is None:
        raise NotFoundError("No such assignment for this user.")
    return assignment


def label_submit(
    *,
    assignment_id: int,
    annotator,
    choice: str,
    client_id: uuid.UUID,
    strength: int | None = None,
    rationale: str = "",
    seconds_spent: float = 0.0,
) -> tuple[Label, bool]:
    """Turn a lease into a label. Returns ``(label, created)``.

    Idempotent: a retry with the same ``client_id`` returns the first label with
    ``created=False``. Holds the assignment row lock, then the item row lock.
    After commit, asks training whether enough new labels arrived to retrain.
    """
    if choice not in CHOICES:
        raise DomainError(f"choice must be one of {', '.join(CHOICES)}.", fields={"choice": ["A, B or tie"]})
    if choice == "tie" and strength is not None:
        raise DomainError("A tie has no strength.", fields={"strength": ["must be empty for a tie"]})
    if strength is not None and strength not in Label.Strength.values:
        raise DomainError("strength must be 1 (negligibly) to 4 (much better).", fields={"strength": ["1 to 4"]})
    if seconds_spent < 0:
        raise DomainError("seconds_spent cannot be negative.", fields={"seconds_spent": [">= 0"]})

    previous = Label.objects.filter(annotator=annotator, client_id=client_id).first()
    if previous is not None:
        return previous, False

    now = timezone.now()
    try:
        with transaction.atomic():
            assignment = _locked_active_assignment(assignment_id=assignment_id, annotator=annotator)
            if assignment.status != Assignment.Status.ACTIVE:
                raise ConflictError(f"This item was already {assignment.status}.")
            ComparisonItem.objects.select_for_update().filter(id=assignment.item_id).first()
            if not assignment_still_holds_slot(assignment, now=now):
                raise ConflictError("Your lease on this item expired and someone else took it. Load the next item.")
            label = Label.objects.create(
                item=assignment.item,
                annotator=annotator,
                assignment=assignment,
                client_id=client_id,
                ranking=_ranking_for_choice(choice, assignment.display_order),
                is_tie=choice == "tie",
                strength=strength,
                rationale=rationale,
                seconds_spent=seconds_spent,
                display_order=assignment.display_order,
            )
            assignment.status = Assignment.Status.SUBMITTED
            assignment.finished_at = now
            assignment.save(update_fields=["status", "finished_at"])
            project_id = assignment.item.project_id
            transaction.on_commit(lambda: _after_label(project_id))
    except IntegrityError:
        # A concurrent retry with the same client_id won the race: return its label.
        previous = Label.objects.filter(annotator=annotator, client_id=client_id).first()
        if previous is None:
            raise
        return previous, False
    return label, True


def _after_label(project_id: int) -> None:
    # Imported here: training depends on annotation models, not the other way round.
    from training.services import training_run_request_if_due

    training_run_request_if_due(project_id=project_id)


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
            raise ConflictError("Your lease on this item expired and someone else took it. Load the next item.")
        assignment.expires_at = now + lease_duration()
        assignment.save(update_fields=["expires_at"])
    return assignment

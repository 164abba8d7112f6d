"""Helpers for the review tests (tests/console/test_review*.py, tests/training/test_review_in_training.py)."""
import json
import uuid

from django.db import transaction

from annotation.assignment import assignment_claim_next
from annotation.models import AnnotatorProgress, ProjectProgress
from annotation.progress import progress_recount
from annotation.services import label_submit


def submit(project, user, *, choice=None, ranking=None, **fields):
    """``user`` labels their next item; display order pinned to response id order (A = the lower id)."""
    assignment = assignment_claim_next(project=project, annotator=user)
    assert assignment is not None, f"no item left for {user.username}"
    assignment.display_order = sorted(assignment.display_order)
    assignment.save(update_fields=["display_order"])
    label, _ = label_submit(
        assignment_id=assignment.id, annotator=user, client_id=uuid.uuid4(), choice=choice, ranking=ranking, **fields
    )
    return label


def counters(project) -> tuple:
    unfinished = ProjectProgress.objects.filter(project=project).values_list("unfinished_items", flat=True).first()
    rows = {
        row.annotator_id: (row.done_total, row.seen_unfinished)
        for row in AnnotatorProgress.objects.filter(project=project)
    }
    return unfinished, rows


def assert_counters_exact(project) -> None:
    """The kept counters equal what a recount from the rows gives."""
    kept = counters(project)
    with transaction.atomic():
        progress_recount(project=project)
    assert counters(project) == kept


def ranking_line(external_id: str, models: list[str]) -> str:
    return json.dumps(
        {
            "external_id": external_id,
            "conversation": [{"role": "user", "content": f"Rank these for {external_id}"}],
            "responses": [{"text": f"**{model}** says hi", "model": model} for model in models],
        }
    )

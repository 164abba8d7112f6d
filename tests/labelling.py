"""Labelling helpers shared by tests that need several annotators' labels on the same items."""
import uuid

from annotation.assignment import assignment_claim_next
from annotation.services import label_submit


def label_in_order(project, user, choices):
    """``user`` labels the project's next items with ``choices`` ("A", "B", "tie", "both_bad").

    Display order is pinned, so "A" is the same response for every annotator.
    """
    for choice in choices:
        assignment = assignment_claim_next(project=project, annotator=user)
        assignment.display_order = sorted(assignment.display_order)
        assignment.save()
        label_submit(assignment_id=assignment.id, annotator=user, choice=choice, client_id=uuid.uuid4())

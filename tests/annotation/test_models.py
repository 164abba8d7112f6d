"""The database's check constraints admit exactly the values of the model enums.

A constraint lives in ``Meta``, where the model's own enums are out of reach, so
its values are spelled out there; this keeps the two from drifting apart.
"""
import uuid

import pytest
from django.db import connection
from django.db.models import Q

from annotation.models import Assignment, Label, LabelReview, Project


def condition(model, name: str) -> Q:
    return next(constraint for constraint in model._meta.constraints if constraint.name == name).condition


def test_choice_constraints_match_the_enums():
    assert condition(Project, "project_label_format_valid") == Q(label_format__in=Project.LabelFormat.values)
    assert condition(Project, "project_rationale_mode_valid") == Q(rationale_mode__in=Project.RationaleMode.values)
    assert condition(Assignment, "assignment_status_valid") == Q(status__in=Assignment.Status.values)
    assert condition(Project, "project_status_valid") == Q(status__in=Project.Status.values)
    assert condition(Label, "label_review_status_valid") == Q(review_status__in=Label.ReviewStatus.values)
    assert condition(LabelReview, "label_review_decision_valid") == Q(decision__in=LabelReview.Decision.values)


def test_strength_constraint_matches_the_enum():
    weakest, strongest = min(Label.Strength.values), max(Label.Strength.values)
    assert Label.Strength.values == list(range(weakest, strongest + 1))
    assert condition(Label, "label_strength_range") == Q(strength__isnull=True) | (
        Q(strength__gte=weakest) & Q(strength__lte=strongest)
    )


@pytest.mark.django_db
def test_a_label_written_around_the_orm_starts_unreviewed(make_project, annotator):
    """Bulk loaders (COPY, raw SQL) name only the columns they know; the database fills review_status."""
    project = make_project(annotators=[annotator], prompts=1)
    item = project.items.get()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Label._meta.db_table} (item_id, annotator_id, client_id, ranking, is_tie, both_bad,
                    rationale, ratings, flags, seconds_spent, display_order, created_at)
                VALUES (%s, %s, %s, '[[1], [2]]', false, false, '', '{{}}', '[]', 1, '[1, 2]', %s)""",
            [item.id, annotator.id, str(uuid.uuid4()), "2026-01-05T09:00:00+00:00"],
        )
    assert Label.objects.get(item=item).review_status == Label.ReviewStatus.UNREVIEWED

"""The database's check constraints admit exactly the values of the model enums.

A constraint lives in ``Meta``, where the model's own enums are out of reach, so
its values are spelled out there; this keeps the two from drifting apart.
"""
from django.db.models import Q

from annotation.models import Assignment, Label, Project


def condition(model, name: str) -> Q:
    return next(constraint for constraint in model._meta.constraints if constraint.name == name).condition


def test_choice_constraints_match_the_enums():
    assert condition(Project, "project_label_format_valid") == Q(label_format__in=Project.LabelFormat.values)
    assert condition(Project, "project_rationale_mode_valid") == Q(rationale_mode__in=Project.RationaleMode.values)
    assert condition(Assignment, "assignment_status_valid") == Q(status__in=Assignment.Status.values)


def test_strength_constraint_matches_the_enum():
    weakest, strongest = min(Label.Strength.values), max(Label.Strength.values)
    assert Label.Strength.values == list(range(weakest, strongest + 1))
    assert condition(Label, "label_strength_range") == Q(strength__isnull=True) | (
        Q(strength__gte=weakest) & Q(strength__lte=strongest)
    )

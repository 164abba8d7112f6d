"""Reads for the projects console: the project list with its progress, the import history, the people to pick.

Scoped like ``annotation.selectors`` (which holds the access rules these build on): every
function takes the requesting user or a project the caller already got through them.
"""
from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from annotation import progress
from annotation.models import ComparisonItem, ImportRecord, Project
from annotation.selectors import projects_for_user


def projects_with_progress(user) -> list[Project]:
    """The projects ``user`` sees on the home page, each with ``items_total``, ``items_done`` and ``percent_done``.

    Two queries whatever the number of projects: the item counts are a grouped subquery and
    the unfinished counts come from the counter rows (``ProjectProgress``); only a project
    loaded in bulk without its row is counted the slow way.
    """
    item_counts = (
        ComparisonItem.objects.filter(project=OuterRef("pk")).order_by().values("project").annotate(n=Count("id")).values("n")
    )
    projects = list(
        projects_for_user(user).select_related("progress").annotate(items_total=Coalesce(Subquery(item_counts), 0))
    )
    for project in projects:
        # A reverse one-to-one without its row raises on access (hasattr answers False).
        row = project.progress if hasattr(project, "progress") else None
        unfinished = row.unfinished_items if row is not None else progress.unfinished_count(project=project)
        project.items_done = max(project.items_total - unfinished, 0)
        project.percent_done = round(100 * project.items_done / project.items_total) if project.items_total else 0
    return projects


def project_item_count(*, project: Project) -> int:
    return ComparisonItem.objects.filter(project=project).count()


def import_records_for_project(*, project: Project) -> QuerySet:
    """The project's import history, newest first, with who uploaded joined in."""
    return ImportRecord.objects.filter(project=project).select_related("uploaded_by").order_by("-id")


def usernames_for_membership() -> list[str]:
    """Everyone an admin may add to a project as annotator or reviewer: active accounts, by name."""
    return list(get_user_model().objects.filter(is_active=True).order_by("username").values_list("username", flat=True))

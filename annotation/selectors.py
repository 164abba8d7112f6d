"""Reads for the annotation side. Every lookup is scoped to the requesting user."""
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from annotation import progress
from annotation.models import (
    AnnotatorProgress,
    Assignment,
    ComparisonItemResponse,
    Label,
    Project,
    ProjectProgress,
)
from annotation.rendering import render_markdown
from annotation.roles import user_is_admin, user_reviews_every_project
from annotation.sql_rows import columns, instances
from config.errors import DomainError, NotFoundError, PermissionDeniedError


def user_is_project_admin(user) -> bool:
    return user_is_admin(user)


def projects_for_user(user) -> QuerySet:
    """Projects ``user`` may annotate (admins: all): ``user.has_perm(ANNOTATE, project)`` in SQL (annotation.roles).

    Archived projects are hidden from annotators.
    """
    if user_is_project_admin(user):
        return Project.objects.all()
    if not (user.is_authenticated and user.is_active):
        return Project.objects.none()
    return Project.objects.filter(annotators=user).exclude(status=Project.Status.ARCHIVED)


def projects_for_reviewer(user) -> QuerySet:
    """Projects whose labels ``user`` may read and review: ``user.has_perm(REVIEW, project)`` in SQL.

    Admins and holders of the review permission itself (group "Reviewers"): all; others the
    ones they are reviewers of.
    """
    if user_is_project_admin(user) or user_reviews_every_project(user):
        return Project.objects.all()
    if not (user.is_authenticated and user.is_active):
        return Project.objects.none()
    return Project.objects.filter(reviewers=user)


def user_can_review(*, user, project: Project) -> bool:
    return projects_for_reviewer(user).filter(id=project.id).exists()


def user_sees_model_names(*, user, project: Project) -> bool:
    """Whether pages and answers may name the models behind ``project``'s responses for ``user``.

    Admins yes; a reviewer only if they do not also annotate the project, since knowing which
    model wrote what would unblind their own labelling (docs/security.md).
    """
    if user_is_project_admin(user):
        return True
    return not project.annotators.filter(id=user.id).exists()


def project_get_for_reviewer(*, user, project_id: int) -> Project:
    """The project if ``user`` may review it; NotFoundError otherwise (unknown and forbidden look alike)."""
    project = projects_for_reviewer(user).filter(id=project_id).first()
    if project is None:
        raise NotFoundError("No such project for this user.")
    return project


def project_get_for_user(*, user, project_id: int) -> Project:
    """The project if ``user`` may annotate (or administer) it; NotFoundError otherwise.

    Not-found and forbidden look the same, so ids of other projects do not leak. The same
    rule as ``projects_for_user``; for an annotator, in SQL (``annotation.sql_rows``), as
    next-item and submit run it (``tests/annotation/test_sql_rows.py`` holds the two together).
    """
    if user_is_project_admin(user) or not (user.is_authenticated and user.is_active):
        project = projects_for_user(user).filter(id=project_id).first()
    else:
        project = _annotated_project(user=user, project_id=project_id)
    if project is None:
        raise NotFoundError("No such project for this user.")
    return project


def _annotated_project(*, user, project_id: int) -> Project | None:
    """``projects_for_user(user).filter(id=project_id).first()`` for an active non-admin user."""
    members = Project.annotators.through._meta
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {columns(Project, "project")} FROM {Project._meta.db_table} project
                WHERE project.id = %s AND project.status <> %s
                  AND EXISTS (SELECT 1 FROM {members.db_table} member
                              WHERE member.{members.get_field("project").column} = project.id
                                AND member.{members.get_field("user").column} = %s)""",
            [project_id, Project.Status.ARCHIVED, user.id],
        )
        row = cursor.fetchone()
    return instances(row, (Project,))[0] if row is not None else None


def require_admin(user) -> None:
    if not user_is_project_admin(user):
        raise PermissionDeniedError("Only project admins can do this.")


def users_by_username(usernames: list[str]) -> list:
    """The users named, or a DomainError naming the ones that do not exist."""
    users = list(get_user_model().objects.filter(username__in=usernames))
    missing = sorted(set(usernames) - {user.username for user in users})
    if missing:
        raise DomainError(f"No such user: {', '.join(missing)}.", fields={"annotators": [f"unknown: {', '.join(missing)}"]})
    return users


def project_get_for_admin(*, user, project_id: int) -> Project:
    project = project_get_for_user(user=user, project_id=project_id)
    if not user_is_project_admin(user):
        raise PermissionDeniedError("Only project admins can do this.")
    return project


def project_get_for_member(*, user, project_id: int) -> Project:
    """The project if ``user`` annotates, reviews or administers it; NotFoundError otherwise.

    For what every member may read (the project's settings and guidelines, the labels that
    ``labels_visible_to`` lets them see). Archived projects stay hidden from annotators.
    """
    try:
        return project_get_for_user(user=user, project_id=project_id)
    except NotFoundError:
        return project_get_for_reviewer(user=user, project_id=project_id)


def project_get_for_review_reader(*, user, project_id: int) -> Project:
    """The project if ``user`` reviews or administers it. Otherwise the answers
    ``project_get_for_admin`` gives: PermissionDeniedError to its annotators (who can see the
    project exists), NotFoundError to everyone else."""
    project = projects_for_reviewer(user).filter(id=project_id).first()
    if project is not None:
        return project
    project_get_for_user(user=user, project_id=project_id)
    raise PermissionDeniedError("Only the project's reviewers and admins can do this.")


def labels_visible_to(*, user, project: Project) -> QuerySet:
    """Admins and the project's reviewers see every label of the project; annotators only their own."""
    labels = Label.objects.filter(item__project=project).select_related("annotator").order_by("id")
    # Admins first: they need no query to tell.
    if user_is_project_admin(user) or user_can_review(user=user, project=project):
        return labels
    return labels.filter(annotator=user)


def annotator_progress(*, project: Project, annotator) -> dict:
    """``done_today``, ``done_total`` and ``remaining`` for ``annotator`` in ``project``: one query.

    Read from the counter rows (``annotation.progress``), whatever the number of labels.
    "Remaining" counts items still short of labels that this annotator has not finished
    or skipped (their own open leases included): the project's unfinished items less the
    ones among them this annotator has finished or skipped. A missing row (data loaded in
    bulk, an annotator who has not labelled yet) is counted from the rows instead.
    """
    # SQL, as it answers every next-item, submit and skip: the ORM version (four scalar
    # subqueries) cost more to compile than to run.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT project.unfinished_items, own.done_total, own.done_today, own.day, own.seen_unfinished
                FROM {ProjectProgress._meta.db_table} project
                LEFT JOIN {AnnotatorProgress._meta.db_table} own
                  ON own.project_id = project.project_id AND own.annotator_id = %s
                WHERE project.project_id = %s""",
            [annotator.id, project.id],
        )
        found = cursor.fetchone()
    fields = ("unfinished", "done_total", "done_today", "day", "seen_unfinished")
    row = dict(zip(fields, found, strict=True)) if found else {}
    if row.get("done_total") is None:
        row |= progress.annotator_counts(project=project, annotator_id=annotator.id)
    if row.get("unfinished") is None:
        row["unfinished"] = progress.unfinished_count(project=project)
    # A raw cursor on SQLite returns the date as text.
    return {
        "done_today": row["done_today"] if str(row["day"]) == timezone.localdate().isoformat() else 0,
        "done_total": row["done_total"],
        "remaining": max(row["unfinished"] - row["seen_unfinished"], 0),
    }


def _html(stored: str | None, text: str) -> str:
    # Rows written before rendering moved to import time, or by a bulk loader that left the
    # column empty, are rendered on the fly: the same function, so the same sanitisation.
    return stored if stored is not None else render_markdown(text)


def assignment_payload(assignment: Assignment) -> dict:
    """What the annotator's client sees: blind (no model names, no response ids), in display order.

    The HTML was rendered at import. The prompt comes with the assignment when the caller
    loaded it with ``select_related("item__prompt")``; the responses' texts too when the
    claim that dealt it read them (``response_texts``), else one query.
    """
    item = assignment.item
    responses = getattr(assignment, "response_texts", None) or {
        response_id: (text, html)
        for response_id, text, html in ComparisonItemResponse.objects.filter(item_id=item.id).values_list(
            "response_id", "response__text", "response__html"
        )
    }
    prompt = item.prompt
    conversation_html = prompt.conversation_html or [None] * len(prompt.conversation)
    positions = Assignment.Position.values
    return {
        "id": assignment.id,
        "item_id": item.id,
        "expires_at": assignment.expires_at,
        "conversation": [
            {"role": message["role"], "content": message["content"], "html": _html(html, message["content"])}
            for message, html in zip(prompt.conversation, conversation_html, strict=True)
        ],
        "responses": [
            {
                "position": positions[index],
                "text": responses[response_id][0],
                "html": _html(responses[response_id][1], responses[response_id][0]),
            }
            for index, response_id in enumerate(assignment.display_order)
        ],
    }

"""Reads for the annotation side. Every lookup is scoped to the requesting user."""
from datetime import datetime, time

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone

from annotation.models import Assignment, ComparisonItem, ComparisonItemResponse, Label, Project
from annotation.rendering import render_markdown
from config.errors import DomainError, NotFoundError, PermissionDeniedError


def user_is_project_admin(user) -> bool:
    return bool(user.is_authenticated and user.is_staff)


def projects_for_user(user) -> QuerySet:
    if user_is_project_admin(user):
        return Project.objects.all()
    return Project.objects.filter(annotators=user)


def project_get_for_user(*, user, project_id: int) -> Project:
    """The project if ``user`` may annotate (or administer) it; NotFoundError otherwise.

    Not-found and forbidden look the same, so ids of other projects do not leak.
    """
    project = projects_for_user(user).filter(id=project_id).first()
    if project is None:
        raise NotFoundError("No such project for this user.")
    return project


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


def labels_visible_to(*, user, project: Project) -> QuerySet:
    """Admins see every label of the project; annotators only their own."""
    labels = Label.objects.filter(item__project=project).select_related("annotator").order_by("id")
    if user_is_project_admin(user):
        return labels
    return labels.filter(annotator=user)


def annotator_progress(*, project: Project, annotator) -> dict:
    now = timezone.now()
    start_of_day = timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))
    done_today = Label.objects.filter(item__project=project, annotator=annotator, created_at__gte=start_of_day).count()
    done_total = Label.objects.filter(item__project=project, annotator=annotator).count()
    # "Remaining" counts items still short of labels that this annotator has not finished
    # or skipped (their own open leases included), as the difference of two counts: an
    # index-only count of unfinished items and a count of this annotator's few finished
    # ones among them. An anti-join per item cost several ms per request on big projects.
    unfinished = ComparisonItem.objects.filter(project=project, label_count__lt=project.labels_per_item)
    done_among_unfinished = Assignment.objects.filter(
        annotator=annotator,
        status__in=[Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED],
        item__project=project,
        item__label_count__lt=project.labels_per_item,
    ).count()
    remaining = unfinished.count() - done_among_unfinished
    return {"done_today": done_today, "done_total": done_total, "remaining": remaining}


def assignment_payload(assignment: Assignment) -> dict:
    """What the annotator's client sees: blind (no model names, no response ids), in display order."""
    item = assignment.item
    texts = dict(ComparisonItemResponse.objects.filter(item_id=item.id).values_list("response_id", "response__text"))
    positions = Assignment.Position.values
    return {
        "id": assignment.id,
        "item_id": item.id,
        "expires_at": assignment.expires_at,
        "conversation": [
            {"role": message["role"], "content": message["content"], "html": render_markdown(message["content"])}
            for message in item.prompt.conversation
        ],
        "responses": [
            {"position": positions[index], "text": texts[response_id], "html": render_markdown(texts[response_id])}
            for index, response_id in enumerate(assignment.display_order)
        ],
    }

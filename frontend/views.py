"""Pages. Each view checks access with the annotation selectors and renders a template;
the pages then talk to the JSON API (same origin, session auth) for everything else.

``ensure_csrf_cookie`` on the app pages: their scripts POST to the API and read the
token from the ``csrftoken`` cookie, which Django only sets once a form asked for it.
"""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation import project_selectors, selectors
from annotation.assignment import MAX_OPEN_LEASES
from annotation.rendering import render_markdown
from config.errors import NotFoundError, PermissionDeniedError


def _api_root() -> str:
    # The scripts build the documented API paths ("projects/3/next-item/", ...) on top of
    # this, so the pages keep working if the API is mounted elsewhere (or under a prefix).
    return reverse("project-list").removesuffix("projects/")


def page_project(lookup, *, user, project_id: int):
    """The project ``lookup`` (an annotation selector) gives ``user``, its refusals as a page's:
    NotFoundError as 404 (unknown and hidden look alike), PermissionDeniedError as 403."""
    try:
        return lookup(user=user, project_id=project_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except PermissionDeniedError as exc:
        raise PermissionDenied(exc.message) from exc


def _heartbeat_seconds() -> float:
    # Renew well inside the lease so one lost heartbeat does not cost the item.
    # WORKBENCH_HEARTBEAT_SECONDS overrides it (tests set it high to let a lease lapse).
    if settings.WORKBENCH_HEARTBEAT_SECONDS:
        return float(settings.WORKBENCH_HEARTBEAT_SECONDS)
    return max(1.0, min(60.0, settings.ASSIGNMENT_LEASE_SECONDS / 3))


@login_required
def home(request):
    projects = project_selectors.projects_with_progress(request.user)
    is_admin = selectors.user_is_project_admin(request.user)
    # Admins reach every project's review pages from its row; reviewers get their own list.
    reviewed = [] if is_admin else list(selectors.projects_for_reviewer(request.user))
    return render(
        request,
        "frontend/home.html",
        {"projects": projects, "is_admin": is_admin, "reviewed": reviewed},
    )


@login_required
@ensure_csrf_cookie
def annotate(request, project_id: int):
    project = page_project(selectors.project_get_for_user, user=request.user, project_id=project_id)
    return render(
        request,
        "frontend/annotate.html",
        {
            "project": project,
            # render_markdown sanitises with an allow-list (nh3), so the result is safe to embed.
            "guidelines_html": mark_safe(render_markdown(project.guidelines)),  # noqa: S308
            "api_root": _api_root(),
            # What the workbench script needs to build the right controls, embedded so the
            # first item can render without a second request for the project.
            "workbench_config": {
                "label_format": project.label_format,
                "criteria": project.criteria,
                "rationale_mode": project.rationale_mode,
                "heartbeat_ms": int(_heartbeat_seconds() * 1000),
                "undo_seconds": settings.LABEL_UNDO_SECONDS,
                # The server answers "nothing" past this many open leases, which would read as "done".
                "max_open_leases": MAX_OPEN_LEASES,
            },
        },
    )


@login_required
@ensure_csrf_cookie
def results(request, project_id: int):
    project = page_project(selectors.project_get_for_admin, user=request.user, project_id=project_id)
    return render(
        request,
        "frontend/results.html",
        {"project": project, "api_root": _api_root(), "annotators": project.annotators.order_by("username")},
    )

"""Projects console pages: create a project, change its settings and status, import into it.

Admins only. The pages render the form and the data it starts from; their scripts save
through the projects API (``annotation.views``), so a page accepts exactly what the API
accepts and shows the API's own messages.
"""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation import project_selectors, selectors
from annotation.assignment import ORDERINGS
from annotation.models import Project
from annotation.serializers import ProjectSerializer
from frontend.views import _api_root, page_project


def _admin_project(request, project_id: int) -> Project:
    """The project for an admin; 404 for projects the user cannot see, 403 for ones they only annotate."""
    return page_project(selectors.project_get_for_admin, user=request.user, project_id=project_id)


def _form_config(request, *, project: Project | None) -> dict:
    """What the project form script starts from: the project (or the API's defaults) and the choices."""
    return {
        "api_root": _api_root(),
        # The script puts the new project's id in place of the 0 once it is created.
        "settings_url": reverse("frontend:project-settings", args=[0]),
        "project": ProjectSerializer(project, context={"request": request}).data if project else None,
        "items": project_selectors.project_item_count(project=project) if project else 0,
        "choices": {
            "label_format": Project.LabelFormat.choices,
            "rationale_mode": Project.RationaleMode.choices,
            "selection_order": sorted(ORDERINGS),
            "status": Project.Status.choices,
        },
        "users": project_selectors.usernames_for_membership(),
    }


@login_required
@ensure_csrf_cookie
def project_new(request):
    if not selectors.user_is_project_admin(request.user):
        raise PermissionDenied("Only project admins can create projects.")
    return render(request, "frontend/console/projects_form.html", {"project": None, "config": _form_config(request, project=None)})


@login_required
@ensure_csrf_cookie
def project_settings(request, project_id: int):
    project = _admin_project(request, project_id)
    return render(
        request, "frontend/console/projects_form.html", {"project": project, "config": _form_config(request, project=project)}
    )


@login_required
@ensure_csrf_cookie
def project_import(request, project_id: int):
    project = _admin_project(request, project_id)
    return render(request, "frontend/console/projects_import.html", {"project": project, "api_root": _api_root()})


urlpatterns = [
    path("projects/new/", project_new, name="project-new"),
    path("projects/<int:project_id>/settings/", project_settings, name="project-settings"),
    path("projects/<int:project_id>/import/", project_import, name="project-import"),
]

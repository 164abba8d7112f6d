"""The project dashboard page (admins): charts of labelling activity, agreement and the reward model.

The page only checks access and names the API; its script fetches every series from
``GET /api/projects/{id}/dashboard/`` and redraws them on a timer.
"""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path, reverse

from annotation import selectors
from frontend.views import page_project


@login_required
def project_dashboard(request, project_id: int):
    project = page_project(selectors.project_get_for_admin, user=request.user, project_id=project_id)
    return render(
        request,
        "frontend/console/dashboards_project.html",
        {"project": project, "dashboard_url": reverse("project-dashboard", args=[project.id])},
    )


urlpatterns = [
    path("projects/<int:project_id>/dashboard/", project_dashboard, name="project-dashboard"),
]

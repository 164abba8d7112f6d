"""quality pages: the project's label quality page (views and routes).

For the project's admins and reviewers (``annotation.selectors.project_get_for_review_reader``): its
annotators get 403, anyone else the 404 an unknown project gets. The page's script reads the quality API.
"""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation import selectors, statistics
from frontend.views import _api_root, page_project


@login_required
@ensure_csrf_cookie
def project_quality(request, project_id: int):
    project = page_project(selectors.project_get_for_review_reader, user=request.user, project_id=project_id)
    return render(
        request,
        "frontend/console/quality_project.html",
        {
            "project": project,
            "api_root": _api_root(),
            # The item page (the review area's) lives beside this one: /projects/<id>/items/<item_id>/.
            "items_root": reverse("frontend:project-quality", args=[project.id]).removesuffix("quality/") + "items/",
            "is_admin": selectors.user_is_project_admin(request.user),
            # The rules the numbers follow, for the page's explanations (json_script: no inline script).
            "quality_config": {
                "reading_words_per_minute": statistics.READING_WORDS_PER_MINUTE,
                "min_reading_seconds": statistics.MIN_READING_SECONDS,
                "speed_window": statistics.SPEED_WINDOW,
                "alpha_max_items": statistics.ALPHA_MAX_ITEMS,
            },
        },
    )


urlpatterns = [
    path("projects/<int:project_id>/quality/", project_quality, name="project-quality"),
]

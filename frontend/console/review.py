"""Review pages: the label browser and one item's labels side by side (admins and the project's reviewers).

The pages render a shell and their configuration; the scripts read and write through the
review API (``annotation.api.review``). Anyone who may not review the project gets the same
404 as for a project that does not exist.
"""
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation import review, review_items, selectors
from annotation.models import Assignment, Label, LabelReview, Project
from config.errors import NotFoundError
from frontend.views import _api_root, page_project


def _page_config(project) -> dict:
    """What both review scripts need, embedded with json_script (no inline script under the CSP)."""
    return {
        "api_root": _api_root(),
        "project_id": project.id,
        "label_format": project.label_format,
        "flags": [{"value": value, "label": label} for value, label in Label.Flag.choices],
        "review_statuses": Label.ReviewStatus.values,
        "decisions": LabelReview.Decision.values,
        "positions": Assignment.Position.values,
        "strengths": {value: label for value, label in Label.Strength.choices},
        # The item page's URL with item id 0, for the scripts to fill in.
        "item_url_zero": reverse("frontend:review-item", args=[project.id, 0]),
    }


@login_required
@ensure_csrf_cookie
def label_browser(request, project_id: int):
    project = page_project(selectors.project_get_for_reviewer, user=request.user, project_id=project_id)
    config = _page_config(project) | {
        "annotators": list(project.annotators.order_by("username").values("id", "username")),
        "outcomes": list(review.Outcome.RANKING if project.label_format == Project.LabelFormat.RANKING else review.Outcome.PAIRWISE),
        "gold_filters": list(review.GOLD_FILTERS),
        "item_progress": list(review_items.ITEM_PROGRESS),
    }
    return render(request, "frontend/console/review_labels.html", {"project": project, "review_config": config})


@login_required
@ensure_csrf_cookie
def item_page(request, project_id: int, item_id: int):
    try:
        project = selectors.project_get_for_reviewer(user=request.user, project_id=project_id)
        review.review_item_check(project=project, item_id=item_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    # Marking gold is for admins (annotation.api.quality); reviewers see the answer, not the controls.
    config = _page_config(project) | {"item_id": item_id, "can_mark_gold": selectors.user_is_project_admin(request.user)}
    return render(
        request, "frontend/console/review_item.html", {"project": project, "item_id": item_id, "review_config": config}
    )


urlpatterns = [
    path("projects/<int:project_id>/labels/browse/", label_browser, name="review-labels"),
    path("projects/<int:project_id>/items/<int:item_id>/", item_page, name="review-item"),
]

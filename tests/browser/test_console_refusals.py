"""Each role, in Chromium, is refused the console pages it may not use and reaches the ones it may.

The API's answers per role are in tests/console/test_access_matrix.py; this checks the pages a
person would type or bookmark, signed in through the login form.
"""
import pytest

from tests.browser.helpers import record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Page -> roles that may open it. Everyone else is refused (403 or 404, never the page).
PAGES = {
    "/people/": {"admin"},
    "/projects/new/": {"admin"},
    "/projects/{id}/settings/": {"admin"},
    "/projects/{id}/import/": {"admin"},
    "/projects/{id}/results/": {"admin"},
    "/projects/{id}/dashboard/": {"admin"},
    "/projects/{id}/labels/browse/": {"admin", "reviewer"},
    "/projects/{id}/quality/": {"admin", "reviewer"},
    "/projects/{id}/annotate/": {"admin", "annotator"},
    "/account/password/": {"admin", "reviewer", "annotator", "outsider"},
}


@pytest.mark.parametrize("role", ["annotator", "reviewer", "outsider", "admin"])
def test_each_role_opens_only_its_pages(role, page, live_server, login, browser_user, make_browser_project):
    users = {name: browser_user(f"{name}-user", admin=name == "admin") for name in ("admin", "annotator", "reviewer", "outsider")}
    project = make_browser_project(
        name="Guarded", annotators=[users["annotator"]],
        lines=[record("g1", "Which is kinder?", [("Kind", "m1"), ("Curt", "m2")])],
    )
    project.reviewers.add(users["reviewer"])
    # The outsider annotates another project: a member of something, not of this.
    make_browser_project(name="Elsewhere", annotators=[users["outsider"]],
                         lines=[record("e1", "Other?", [("One", "m1"), ("Two", "m2")])])
    login(users[role])

    for template, allowed in PAGES.items():
        path = template.format(id=project.id)
        status = page.goto(f"{live_server.url}{path}").status
        if role in allowed:
            assert status == 200, f"{role} should open {path}, got {status}"
        else:
            assert status in (403, 404), f"{role} must be refused {path}, got {status}"

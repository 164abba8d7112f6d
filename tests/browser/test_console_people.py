"""The People pages in Chromium: inviting an annotator, assigning a project, deactivating, and
changing one's own password.

Writes console-people.png, console-person.png and console-invitation.png into a temporary folder,
or into CONSOLE_SCREENSHOTS when set (``CONSOLE_SCREENSHOTS=docs/screenshots``).
"""

import pytest

from tests.browser.conftest import TIMEOUT_MS
from tests.browser.helpers import PASSWORD, record
from tests.browser.test_security_browser import violations, watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def lines() -> list[str]:
    return [record("q1", "Which planet is largest?", [("Jupiter.", "model-one"), ("Saturn.", "model-two")])]


@pytest.fixture
def fresh_page(chromium):
    """A second browser with no cookies: the invitee's, or someone signing in afresh."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    page.goto("about:blank")
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def test_admin_invites_an_annotator_who_sets_a_password_and_lands_on_their_projects(
    page, fresh_page, live_server, login, browser_user, make_browser_project, shots
):
    from django.contrib.auth import get_user_model

    admin = browser_user("console-admin", admin=True)
    colleague = browser_user("maria")
    project = make_browser_project(name="Helpfulness v3", annotators=[colleague], lines=lines())
    make_browser_project(name="Safety red-team", lines=lines()).reviewers.add(colleague)
    console = watch_csp(page)
    fresh_console = watch_csp(fresh_page)
    login(admin)

    page.goto(f"{live_server.url}/people/")
    page.wait_for_selector("[data-testid=user-maria]")
    page.fill("[data-testid=create-username]", "newcomer")
    page.fill("[data-testid=create-email]", "newcomer@example.org")
    page.check(f"[data-testid=annotator-of] input[value='{project.id}']")
    page.click("[data-testid=create-submit]")
    page.wait_for_selector("[data-testid=user-newcomer] >> text=invited")
    link = page.input_value("[data-testid=invitation-url]")
    assert link.startswith(f"{live_server.url}/invitation/")
    assert "annotator of 1 project" in page.inner_text("[data-testid=user-newcomer]")
    shots(page, "console-people")

    fresh_page.goto(link)
    fresh_page.wait_for_url("**/set-password/")
    assert fresh_page.inner_text("[data-testid=invitation-username]") == "newcomer"
    fresh_page.fill("#id_new_password1", "short")
    fresh_page.fill("#id_new_password2", "short")
    fresh_page.click("button[type=submit]")
    assert "at least 8 characters" in fresh_page.inner_text("[data-testid=invitation-errors]")
    shots(fresh_page, "console-invitation")
    fresh_page.fill("#id_new_password1", "newcomer-password")
    fresh_page.fill("#id_new_password2", "newcomer-password")
    fresh_page.click("button[type=submit]")
    fresh_page.wait_for_url(f"{live_server.url}/")
    assert fresh_page.is_visible(f"[data-testid=project-{project.id}]")
    assert "newcomer" in fresh_page.inner_text(".topbar__user")
    assert get_user_model().objects.get(username="newcomer").check_password("newcomer-password")

    # The link worked once.
    fresh_page.goto(link)
    assert fresh_page.is_visible("[data-testid=invitation-invalid]")
    assert violations(page, console) == [] and violations(fresh_page, fresh_console) == []


def test_admin_assigns_a_project_then_deactivates_a_user_who_cannot_sign_in(
    page, fresh_page, live_server, login, browser_user, make_browser_project, shots
):
    admin = browser_user("console-admin", admin=True)
    worker = browser_user("worker")
    first = make_browser_project(name="Helpfulness v3", annotators=[worker], lines=lines())
    second = make_browser_project(name="Safety red-team", lines=lines())
    console = watch_csp(page)
    login(admin)

    page.goto(f"{live_server.url}/people/{worker.id}/")
    page.wait_for_selector("[data-testid=toggle-active] >> text=Deactivate")
    assert page.is_checked(f"[data-testid=annotator-of] input[value='{first.id}']")
    page.check(f"[data-testid=annotator-of] input[value='{second.id}']")
    page.check(f"[data-testid=reviewer-of] input[value='{first.id}']")
    page.click("[data-testid=save-projects]")
    page.wait_for_selector("[data-testid=person-badges] >> text=annotator of 2 projects")
    assert set(worker.annotation_projects.values_list("id", flat=True)) == {first.id, second.id}
    assert list(worker.reviewed_projects.values_list("id", flat=True)) == [first.id]
    shots(page, "console-person")

    page.click("[data-testid=toggle-active]")
    page.wait_for_selector("[data-testid=toggle-active] >> text=Reactivate")
    assert page.inner_text("[data-testid=person-badges]").startswith("inactive")
    assert violations(page, console) == []

    fresh_page.goto(f"{live_server.url}/accounts/login/")
    fresh_page.fill("#id_username", "worker")
    fresh_page.fill("#id_password", PASSWORD)
    fresh_page.click("button[type=submit]")
    fresh_page.wait_for_selector(".alert--error")
    assert fresh_page.url.endswith("/accounts/login/")


def test_an_admin_cannot_revoke_their_own_admin_on_the_page(page, live_server, login, browser_user):
    admin = browser_user("console-admin", admin=True)
    login(admin)
    page.goto(f"{live_server.url}/people/{admin.id}/")
    page.wait_for_selector("[data-testid=toggle-admin] >> text=Revoke admin")
    assert page.is_disabled("[data-testid=toggle-admin]") and page.is_disabled("[data-testid=toggle-active]")


def test_an_annotator_changes_their_password(page, fresh_page, live_server, login, browser_user):
    annotator = browser_user("changer")
    login(annotator)
    page.goto(f"{live_server.url}/account/password/")
    page.fill("#id_old_password", PASSWORD)
    page.fill("#id_new_password1", "a-new-password")
    page.fill("#id_new_password2", "a-new-password")
    page.click("[data-testid=account-password] button[type=submit]")  # not the top bar's Log out
    page.wait_for_selector("[data-testid=password-changed]")
    page.goto(f"{live_server.url}/")
    assert page.is_visible(".topbar__user")  # still signed in

    fresh_page.goto(f"{live_server.url}/accounts/login/")
    fresh_page.fill("#id_username", "changer")
    fresh_page.fill("#id_password", "a-new-password")
    fresh_page.click("button[type=submit]")
    fresh_page.wait_for_url(f"{live_server.url}/")

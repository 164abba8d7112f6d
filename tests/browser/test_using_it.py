"""README's "Using it", step by step in Chromium: an admin, from the demo data, adds two
annotators, creates a second project for them, imports into it; both label; the admin reads
their labels. Pages only: no Django admin, no API call made by the test itself."""
import pytest

from tests.browser.conftest import TIMEOUT_MS
from tests.browser.helpers import record, wait_for_assignment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "walkthrough-password-1"


@pytest.fixture
def own_browser(chromium, live_server):
    """Another person's browser (own cookies), signed in through the login form."""
    contexts = []

    def sign_in(username: str, password: str):
        context = chromium.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    yield sign_in
    for context in contexts:
        context.close()


def test_readme_walkthrough_from_a_fresh_start_to_a_second_project_with_two_annotators(
    page, live_server, login, browser_user, make_browser_project, own_browser, tmp_path
):
    from annotation.models import Label, Project

    admin = browser_user("admin", admin=True)
    make_browser_project(name="Demo", lines=[record("d1", "Demo question", [("Yes", "m1"), ("No", "m2")])])
    login(admin)

    # 1. The Projects page lists the demo project with its links.
    assert page.is_visible("text=Demo")

    # 2. People -> Add a person, twice, with an initial password.
    page.click("[data-testid=nav-people]")
    page.wait_for_url(f"{live_server.url}/people/")
    for username in ("ada", "bo"):
        page.fill("[data-testid=create-username]", username)
        page.check("[data-testid=create-set-password]")
        page.fill("[data-testid=create-password]", NEW_PASSWORD)
        page.click("[data-testid=create-submit]")
        page.wait_for_selector(f"[data-testid=user-{username}]")

    # 3. Projects -> New project, the two new people as annotators.
    page.click(".topnav >> text=Projects")
    page.click("[data-testid=project-new]")
    page.wait_for_url(f"{live_server.url}/projects/new/")
    page.fill("[data-testid=field-name]", "Second project")
    page.fill("[data-testid=field-guidelines]", "Prefer the **kinder** answer.")
    page.wait_for_selector("[data-testid=guidelines-preview] strong >> text=kinder")
    page.select_option("[data-testid=field-annotators]", label=["ada", "bo"])
    page.click("[data-testid=project-save]")
    page.wait_for_url("**/settings/")
    project = Project.objects.get(name="Second project")
    assert set(project.annotators.values_list("username", flat=True)) == {"ada", "bo"}

    # 4. Its Import page: a JSONL upload, listed in the history.
    page.click("[data-testid=project-nav] >> text=Import")
    page.wait_for_url(f"{live_server.url}/projects/{project.id}/import/")
    upload = tmp_path / "second.jsonl"
    upload.write_text("\n".join(
        record(f"q{index}", f"Question {index}", [(f"Gentle {index}", "kind-model"), (f"Curt {index}", "curt-model")])
        for index in range(8)  # each annotator's page holds up to three leases
    ) + "\n")
    page.set_input_files("[data-testid=import-file]", str(upload))
    page.click("[data-testid=import-submit]")
    page.wait_for_selector("[data-testid=import-history] >> text=succeeded")
    assert project.items.count() == 8

    # 5. Both annotators sign in and label an item each.
    for username, key in (("ada", "a"), ("bo", "b")):
        theirs = own_browser(username, NEW_PASSWORD)
        assert not theirs.is_visible("text=Demo")  # only their projects
        theirs.goto(f"{live_server.url}/projects/{project.id}/annotate/")
        theirs.wait_for_function("() => (document.querySelector('#workbench')?.dataset.assignmentId || '') !== ''")
        shown = theirs.get_attribute("#workbench", "data-assignment-id")
        theirs.keyboard.press(key)
        wait_for_assignment(theirs, previous=shown)
        theirs.wait_for_function("() => document.querySelector('#workbench').dataset.pending === '0'")
    assert Label.objects.filter(item__project=project).count() == 2

    # 6. The admin reads the labels on the project's Labels page.
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.click("[data-testid=project-nav] >> text=Labels")
    page.wait_for_url(f"{live_server.url}/projects/{project.id}/labels/browse/")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=label-row]').length === 2")
    rows = page.inner_text("[data-testid=review-rows]")
    assert "ada" in rows and "bo" in rows

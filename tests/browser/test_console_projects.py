"""Projects console in Chromium, as an admin: create a project, configure it, import into it,
pause it (the annotator's workbench says so) and resume it.

Also takes the console's screenshots. They go to a temporary folder unless
CONSOLE_SCREENSHOTS names one, so a normal run does not touch the docs:

    CONSOLE_SCREENSHOTS=docs/screenshots pytest tests/browser/test_console_projects.py
"""
import uuid

import pytest

from tests.browser.conftest import TIMEOUT_MS
from tests.browser.helpers import PASSWORD, record, wait_for_assignment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GUIDELINES = "# How to judge\n\nPrefer **correct** answers over confident ones.\n\n- Check the code runs\n- Penalise made-up facts"


@pytest.fixture
def second_page(chromium, live_server):
    """Another person's browser (own cookies), signed in through the login form."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    errors = []

    def sign_in(user):
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(error))
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    yield sign_in
    for page in context.pages:
        page.goto("about:blank")
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def test_an_admin_runs_a_project_from_creation_to_pause(page, live_server, login, browser_user, second_page, shots, tmp_path):
    from annotation.models import ImportRecord, Project

    admin = browser_user("root", admin=True)
    annotator = browser_user("ann")
    browser_user("rita")
    login(admin)

    # Create: every setting, the guidelines previewed as annotators will see them.
    page.click("[data-testid=project-new]")
    page.wait_for_url(f"{live_server.url}/projects/new/")
    page.fill("[data-testid=field-name]", "Code answers")
    page.select_option("[data-testid=field-rationale_mode]", "required")
    page.fill("[data-testid=field-labels_per_item]", "2")
    page.fill("[data-testid=field-gold_rate]", "0.05")
    page.fill("[data-testid=field-guidelines]", GUIDELINES)
    page.wait_for_selector("[data-testid=guidelines-preview] strong >> text=correct")
    assert page.inner_text("[data-testid=guidelines-preview] h1") == "How to judge"
    page.click("[data-testid=add-criterion]")
    page.fill("[data-testid=criterion] [name=key]", "helpfulness")
    page.fill("[data-testid=criterion] [name=label]", "Helpfulness")
    page.select_option("[data-testid=field-annotators]", ["ann"])
    page.select_option("[data-testid=field-reviewers]", ["rita"])
    shots(page, "console-project-new")
    page.click("[data-testid=project-save]")
    page.wait_for_url("**/settings/")
    project = Project.objects.get(name="Code answers")
    assert (project.rationale_mode, project.labels_per_item, project.gold_rate) == ("required", 2, 0.05)
    assert project.criteria == [{"key": "helpfulness", "label": "Helpfulness", "scale": 5, "required": False}]
    assert [u.username for u in project.annotators.all()] == ["ann"]
    assert [u.username for u in project.reviewers.all()] == ["rita"]

    # A bad value: the API's message next to the field, nothing saved.
    page.fill("[data-testid=field-gold_rate]", "2")
    page.fill("[data-testid=field-uncertainty_random_share]", "-1")
    page.click("[data-testid=project-save]")
    page.wait_for_selector("[data-testid=error-gold_rate]:not([hidden])")
    assert "less than or equal to 1" in page.inner_text("[data-testid=error-gold_rate]")
    assert "greater than or equal to 0" in page.inner_text("[data-testid=error-uncertainty_random_share]")
    page.fill("[data-testid=field-gold_rate]", "0.1")
    page.fill("[data-testid=field-uncertainty_random_share]", "0.3")
    assert not page.is_checked("[data-testid=field-reveal_model_verdict]")  # off by default
    page.check("[data-testid=field-reveal_model_verdict]")
    page.fill("[data-testid=field-guidelines]", GUIDELINES + "\n- Be brief")
    page.click("[data-testid=project-save]")
    page.wait_for_selector("[data-testid=save-status] >> text=Saved.")
    assert page.is_hidden("[data-testid=error-gold_rate]")
    assert page.is_hidden("[data-testid=error-uncertainty_random_share]")
    project.refresh_from_db()
    assert project.gold_rate == 0.1 and project.guidelines.endswith("Be brief")
    assert (project.uncertainty_random_share, project.reveal_model_verdict) == (0.3, True)

    # Import: a file with a bad line is refused and listed, then a good one goes in.
    page.goto(f"{live_server.url}/projects/{project.id}/import/")
    page.wait_for_selector("[data-testid=import-history-rows] >> text=Nothing imported yet.")
    bad = tmp_path / "first-try.jsonl"
    bad.write_text(record("p1", "Q1?", [("a", "m1"), ("b", "m2")]) + "\n" + '{"external_id": "p2", "prompt": "Q2"}\n')
    page.set_input_files("[data-testid=import-file]", str(bad))
    page.click("[data-testid=import-submit]")
    page.wait_for_selector("[data-testid=import-errors]:not([hidden])")
    assert "Line 2, responses: must be a list of 2 to 9 responses" in page.inner_text("[data-testid=import-errors]")
    page.wait_for_selector("[data-testid=import-row][data-status=failed] >> text=first-try.jsonl")

    good = tmp_path / "prompts.jsonl"
    good.write_text("\n".join(record(f"p{i}", f"Question {i}?", [(f"answer {i} a", "m1"), (f"answer {i} b", "m2")]) for i in range(3)) + "\n")
    page.set_input_files("[data-testid=import-file]", str(good))
    page.click("[data-testid=import-submit]")
    page.wait_for_selector("text=Imported 3 prompts, 6 responses, 3 items.")
    page.wait_for_selector("[data-testid=import-row][data-status=succeeded] >> text=prompts.jsonl")
    assert page.locator("[data-testid=import-row]").count() == 2
    page.click("[data-testid=import-row][data-status=failed] summary")
    shots(page, "console-project-import")
    assert [r.status for r in ImportRecord.objects.filter(project=project)] == ["succeeded", "failed"]

    # The label format is now fixed: the page says why, and the API's refusal sits by the field.
    page.goto(f"{live_server.url}/projects/{project.id}/settings/")
    assert "3 items are imported" in page.inner_text("[data-testid=format-hint]")
    page.select_option("[data-testid=field-label_format]", "ranking")
    page.click("[data-testid=project-save]")
    page.wait_for_selector("[data-testid=error-label_format]:not([hidden])")
    assert page.inner_text("[data-testid=error-label_format]") == "The label format cannot change once items are imported."
    page.select_option("[data-testid=field-label_format]", "pairwise")
    page.click("[data-testid=project-save]")
    page.wait_for_selector("[data-testid=save-status] >> text=Saved.")

    # Pause: the annotator's workbench says so instead of "all done".
    page.click("[data-testid=project-pause]")
    page.click("[data-testid=confirm-ok]")
    page.wait_for_selector("[data-testid=status-badge] >> text=paused")
    shots(page, "console-project-settings")
    project.refresh_from_db()
    assert project.status == "paused"

    workbench = second_page(annotator)
    workbench.goto(f"{live_server.url}/projects/{project.id}/annotate/")
    workbench.wait_for_selector("[data-testid=empty-state][data-paused=true]")
    assert "This project is paused" in workbench.inner_text("[data-testid=empty-state]")

    # Resume: the next check hands out an item.
    page.click("[data-testid=project-resume]")
    page.click("[data-testid=confirm-ok]")
    page.wait_for_selector("[data-testid=status-badge] >> text=active")
    workbench.click("[data-testid=empty-state] [data-action=reload]")
    assert wait_for_assignment(workbench)

    # Archive, with its confirmation: the form turns read-only, the annotator loses the project.
    page.click("[data-testid=project-archive]")
    page.click("[data-testid=confirm-ok]")
    page.wait_for_selector("[data-testid=status-badge] >> text=archived")
    # The inputs sit in a disabled fieldset: :disabled, not their own attribute, says so.
    assert page.eval_on_selector("[data-testid=field-name]", "input => input.matches(':disabled')")
    assert page.is_disabled("[data-testid=project-save]")
    workbench.goto(f"{live_server.url}/")
    assert workbench.locator(f"[data-testid=project-{project.id}]").count() == 0
    page.click("[data-testid=project-unarchive]")
    page.click("[data-testid=confirm-ok]")
    page.wait_for_selector("[data-testid=status-badge] >> text=active")
    assert page.eval_on_selector("[data-testid=field-name]", "input => !input.matches(':disabled')")


def test_cancelling_the_confirmation_changes_nothing(page, live_server, login, browser_user, make_browser_project):
    from annotation.models import Project

    admin = browser_user("root", admin=True)
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/settings/")
    page.click("[data-testid=project-archive]")
    page.click("[data-testid=confirm-dialog] button[value=cancel]")
    page.wait_for_timeout(300)
    assert Project.objects.get(id=project.id).status == "active"
    assert page.inner_text("[data-testid=status-badge]") == "active"


def test_the_home_page_is_the_admins_entry_point(page, live_server, login, browser_user, make_browser_project, shots):
    from annotation.assignment import assignment_claim_next
    from annotation.services import label_submit, project_create, project_update

    admin = browser_user("root", admin=True)
    ann = browser_user("ann")
    lines = [record(f"p{i}", f"Q{i}?", [(f"one {i}", "m1"), (f"two {i}", "m2")]) for i in range(4)]
    active = make_browser_project(name="Helpfulness", annotators=[ann], lines=lines)
    paused = make_browser_project(name="Code review", annotators=[ann], lines=lines[:2])
    project_update(project=paused, status="paused")
    project_create(name="Old pilot", status="archived")
    for _ in range(3):  # some progress to show
        assignment = assignment_claim_next(project=active, annotator=ann)
        label_submit(assignment_id=assignment.id, annotator=ann, choice="A", client_id=uuid.uuid4())
    login(admin)

    page.wait_for_selector("[data-testid=project-list]")
    assert page.locator("[data-testid=project-list] tbody tr").count() == 3
    row = page.locator(f"[data-testid=project-{paused.id}]")
    assert row.locator("[data-testid=project-status]").inner_text() == "paused"
    assert "0 / 2 items" in row.locator("[data-testid=project-progress]").inner_text()
    assert "3 / 4 items · 75%" in page.inner_text(f"[data-testid=project-{active.id}] [data-testid=project-progress]")
    shots(page, "home-admin")
    page.click(f"[data-testid=project-{active.id}] [data-testid=project-settings-link]")
    page.wait_for_url(f"**/projects/{active.id}/settings/")
    assert page.input_value("[data-testid=field-name]") == "Helpfulness"

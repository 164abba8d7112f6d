"""Admins manage model versions and the training policy from the results page.

With WORKBENCH_SCREENSHOTS naming a folder, the rollback test also saves results.png there.
"""
import os
from pathlib import Path

import pytest

from tests.browser.helpers import record
from training import services
from training.models import ModelVersion, TrainingPolicy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def finished_version(project, *, version: int, promote: bool, accuracy: float):
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    return services.training_run_complete(
        run_id=run.id, version=version, checkpoint_path=f"project-{project.id}/v{version}",
        metrics={"accuracy": accuracy, "loss": 0.5, "pairs": 4}, champion_metrics={}, promote=promote,
        config={}, seed=0, code_version="test",
    )


def test_admin_rolls_back_to_an_older_version(page, live_server, login, browser_user, make_browser_project, monkeypatch):
    monkeypatch.setattr(services, "_enqueue_training", lambda run_id: None)
    monkeypatch.setattr(services, "_enqueue_scoring", lambda version_id: None)
    admin = browser_user("root", admin=True)
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    v1 = finished_version(project, version=1, promote=True, accuracy=0.8)
    finished_version(project, version=2, promote=True, accuracy=0.7)

    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_function("document.querySelector('[data-testid=champion-version]').textContent === 'v2'")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"[data-testid=promote-{v1.id}]")
    page.wait_for_function("document.querySelector('[data-testid=champion-version]').textContent === 'v1'")
    assert ModelVersion.objects.get(status="champion") == v1
    if os.environ.get("WORKBENCH_SCREENSHOTS"):
        page.wait_for_function("document.querySelector('[name=nightly_at]').value !== ''")
        page.screenshot(path=str(Path(os.environ["WORKBENCH_SCREENSHOTS"]) / "results.png"), full_page=True)


def test_admin_edits_the_training_policy(page, live_server, login, browser_user, make_browser_project):
    admin = browser_user("root", admin=True)
    annotator = browser_user("noisy")
    project = make_browser_project(annotators=[annotator], lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])

    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_function("document.querySelector('[name=nightly_at]').value !== ''")  # defaults loaded
    page.select_option("[name=mode]", "incremental")
    page.fill("[data-testid=policy-nightly-at]", "04:30")
    page.fill("[name=retrain_every_n_labels]", "50")
    page.check(f"[name=excluded_annotator_ids][value='{annotator.id}']")
    page.click("[data-testid=save-policy]")
    page.wait_for_selector("text=Training policy saved.")

    policy = TrainingPolicy.objects.get(project=project)
    assert (policy.mode, policy.nightly_at.strftime("%H:%M"), policy.retrain_every_n_labels) == ("incremental", "04:30", 50)
    assert list(policy.excluded_annotators.all()) == [annotator]

    page.fill("[name=promotion_tolerance]", "5")
    page.click("[data-testid=save-policy]")
    page.wait_for_selector("[data-region=policy-error]:not([hidden])")
    assert "promotion tolerance" in page.inner_text("[data-region=policy-error]")


def test_admin_reads_annotator_quality_and_weights_votes_by_it(page, live_server, login, browser_user, make_browser_project):
    from tests.labelling import label_in_order

    admin = browser_user("root", admin=True)
    careful, also_careful, careless = browser_user("careful"), browser_user("also-careful"), browser_user("careless")
    lines = [record(f"p{index}", f"Q{index}?", [("good", "m1"), ("bad", "m2")]) for index in range(4)]
    project = make_browser_project(annotators=[careful, also_careful, careless], lines=lines, labels_per_item=3)
    for user, choices in ((careful, "AAAA"), (also_careful, "AAAA"), (careless, "AABB")):
        label_in_order(project, user, choices)

    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_selector("[data-region=quality] tr[data-annotator=careless]")
    # 12 label pairs, 8 agreeing; careful agrees on 6 of 8 of theirs, careless on 4 of 8.
    assert page.inner_text("[data-region=quality-summary]") == "agree on 67 % of 12 comparisons"
    careful_row = page.inner_text("[data-region=quality] tr[data-annotator=careful]").split("\t")
    careless_row = page.inner_text("[data-region=quality] tr[data-annotator=careless]").split("\t")
    assert careful_row[:3] == ["careful", "4", "75 %"] and careless_row[:3] == ["careless", "4", "50 %"]
    assert float(careful_row[3]) > float(careless_row[3])

    page.wait_for_function("document.querySelector('[name=nightly_at]').value !== ''")
    page.select_option("[name=aggregation]", "weighted")
    page.click("[data-testid=save-policy]")
    page.wait_for_selector("text=Training policy saved.")
    assert TrainingPolicy.objects.get(project=project).aggregation == "weighted"


def test_admin_imports_a_file_and_sees_bad_lines(page, live_server, login, browser_user, make_browser_project, tmp_path):
    from annotation.models import Prompt

    admin = browser_user("root", admin=True)
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")

    bad = tmp_path / "bad.jsonl"
    bad.write_text(record("p2", "Q2?", [("a", "m1"), ("b", "m2")]) + "\n" + '{"external_id": "p3", "prompt": "Q3"}\n')
    page.set_input_files("[data-testid=import-file]", str(bad))
    page.click("[data-testid=import-submit]")
    page.wait_for_selector("[data-region=import-errors]:not([hidden])")
    assert "Line 2, responses: must be a list of 2 to 9 responses" in page.inner_text("[data-region=import-errors]")
    assert Prompt.objects.filter(project=project).count() == 1

    good = tmp_path / "good.jsonl"
    good.write_text(record("p2", "Q2?", [("a", "m1"), ("b", "m2")]) + "\n")
    page.set_input_files("[data-testid=import-file]", str(good))
    page.click("[data-testid=import-submit]")
    page.wait_for_selector("text=Imported 1 prompts, 2 responses, 1 items.")
    assert Prompt.objects.filter(project=project).count() == 2

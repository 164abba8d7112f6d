"""Admins manage model versions and the training policy from the results page.

With WORKBENCH_SCREENSHOTS naming a folder, the rollback test also saves results.png there, the
versions test results-versions.png (the model versions table), and the criteria test
results-criteria.png (per-criterion scores and heads).
"""
import os
from pathlib import Path
from zoneinfo import ZoneInfo

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


def test_admin_rolls_back_to_an_older_version(page, live_server, login, browser_user, make_browser_project, monkeypatch, sent_tasks):
    admin = browser_user("root", admin=True)
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    v1 = finished_version(project, version=1, promote=True, accuracy=0.8)
    finished_version(project, version=2, promote=True, accuracy=0.7)

    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_function("() => document.querySelector('[data-testid=champion-version]').textContent === 'v2'")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"[data-testid=promote-{v1.id}]")
    page.wait_for_function("() => document.querySelector('[data-testid=champion-version]').textContent === 'v1'")
    assert ModelVersion.objects.get(status="champion") == v1
    if os.environ.get("WORKBENCH_SCREENSHOTS"):
        page.wait_for_function("() => document.querySelector('[name=nightly_at]').value !== ''")
        page.screenshot(path=str(Path(os.environ["WORKBENCH_SCREENSHOTS"]) / "results.png"), full_page=True)


def test_admin_edits_the_training_policy(page, live_server, login, browser_user, make_browser_project):
    admin = browser_user("root", admin=True)
    annotator = browser_user("noisy")
    project = make_browser_project(annotators=[annotator], lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])

    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_function("() => document.querySelector('[name=nightly_at]').value !== ''")  # defaults loaded
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

    page.wait_for_function("() => document.querySelector('[name=nightly_at]').value !== ''")
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


def completed_version(project, *, version: int, promote: bool, metrics: dict, champion_metrics: dict, gate: dict):
    """A finished run's model version, with the metrics and gate record the pipeline would store."""
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    return services.training_run_complete(
        run_id=run.id, version=version, checkpoint_path=f"project-{project.id}/v{version}", metrics=metrics,
        champion_metrics=champion_metrics, gate=gate, promote=promote, config={}, seed=0, code_version="test",
    )


def open_results(page, live_server, login, admin, project):
    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")


def test_queued_run_says_it_is_waiting_for_the_broker(page, live_server, login, browser_user, make_browser_project, monkeypatch):
    from kombu.exceptions import OperationalError

    from training import dispatch

    def broker_down(*args, **kwargs):
        raise OperationalError("Connection refused")

    monkeypatch.setattr(dispatch.app, "send_task", broker_down)
    admin = browser_user("root", admin=True)
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    run, _ = services.training_run_request(project=project, trigger="manual")

    open_results(page, live_server, login, admin, project)
    waiting = "Waiting for the broker: The broker could not be reached (Connection refused); sending again every minute."
    page.wait_for_selector(f"[data-testid=run-waiting-{run.id}]")
    assert page.inner_text(f"[data-testid=run-waiting-{run.id}]") == waiting
    assert page.inner_text("[data-testid=latest-run-waiting]") == waiting
    assert "Sent to the broker 1 time" in page.get_attribute(f"[data-testid=run-waiting-{run.id}]", "title")

    # The broker is back: the reconciler's next send gets through and the page follows without a reload.
    sent = []
    monkeypatch.setattr(dispatch.app, "send_task", lambda name, args, **kwargs: sent.append((name, args)))
    services.training_run_dispatch(run_id=run.id)
    assert sent == [(dispatch.TRAIN_TASK, [run.id])]
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=run-waiting-{run.id}]')?.textContent.startsWith('Sent to the workers')"
    )
    assert page.inner_text("[data-testid=latest-run-waiting]") == "Sent to the workers; waiting for a free training worker."

    services.training_run_start(run_id=run.id)
    page.wait_for_selector(f"[data-testid=run-{run.id}][data-status=running]")
    assert page.locator(f"[data-testid=run-waiting-{run.id}]").count() == 0
    assert page.locator("[data-testid=latest-run-waiting]").is_hidden()


def test_versions_show_accuracy_intervals_and_the_paired_difference(
    page, live_server, login, browser_user, make_browser_project, sent_tasks
):
    admin = browser_user("root", admin=True)
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    gate = {"eval_pairs": 180, "min_pairs": 50, "tolerance": 0.0}
    v1 = completed_version(
        project, version=1, promote=True,
        metrics={"accuracy": 0.68, "accuracy_ci": [0.609, 0.744], "pairs": 180, "loss": 0.61},
        champion_metrics={},
        gate={**gate, "promote": True, "outcome": "first_model", "difference": None, "difference_ci": None,
              "reason": "The first model is promoted: there is nothing to compare."},
    )
    v2 = completed_version(
        project, version=2, promote=False,
        metrics={"accuracy": 0.71, "accuracy_ci": [0.639, 0.772], "pairs": 180, "loss": 0.58},
        champion_metrics={"accuracy": 0.679, "accuracy_ci": [0.607, 0.743], "pairs": 180},
        gate={**gate, "promote": False, "outcome": "not_better", "difference": 0.031, "difference_ci": [-0.004, 0.066],
              "reason": "Not promoted: accuracy +3.1 points against the champion on the same 180 pairs "
              "(95 % interval -0.4 points to +6.6 points) is not shown to be better."},
    )
    v3 = completed_version(
        project, version=3, promote=True,
        metrics={"accuracy": 0.75, "accuracy_ci": [0.682, 0.807], "pairs": 180, "loss": 0.52},
        champion_metrics={"accuracy": 0.68, "accuracy_ci": [0.609, 0.744], "pairs": 180},
        gate={**gate, "promote": True, "outcome": "better", "difference": 0.07, "difference_ci": [0.031, 0.109],
              "reason": "Promoted: accuracy +7.0 points against the champion on the same 180 pairs "
              "(95 % interval +3.1 points to +10.9 points)."},
    )

    open_results(page, live_server, login, admin, project)
    page.wait_for_selector(f"[data-testid=version-gate-{v1.id}]")

    def text(testid):
        return page.inner_text(f"[data-testid={testid}]")

    assert text(f"version-accuracy-{v2.id}") == "71.0 % (64–77) · 180 pairs"
    assert text(f"version-champion-{v2.id}") == "67.9 % (61–74)"
    assert text(f"version-difference-{v2.id}") == "+3.1 pts (−0.4 to +6.6)"
    assert text(f"version-gate-{v2.id}").startswith("not better\nNot promoted: accuracy +3.1 points")
    assert text(f"version-difference-{v3.id}") == "+7.0 pts (+3.1 to +10.9)"
    assert text(f"version-gate-{v3.id}").startswith("better\nPromoted:")
    # The first model had nothing to be compared with.
    assert (text(f"version-champion-{v1.id}"), text(f"version-difference-{v1.id}")) == ("—", "—")
    assert text(f"version-gate-{v1.id}").startswith("first model")
    # The controls are still there: both older versions can be rolled back to; the champion has none.
    assert page.inner_text(f"[data-testid=promote-{v2.id}]") == "Roll back"
    assert page.inner_text(f"[data-testid=promote-{v1.id}]") == "Roll back"
    assert page.locator(f"[data-testid=promote-{v3.id}]").count() == 0
    assert "95 % CI 68–81 % · 180 held-out pairs" == page.inner_text("[data-region=metric-pairs]")

    if os.environ.get("WORKBENCH_SCREENSHOTS"):
        from training.promotion import promotion_decision

        gate = promotion_decision(challenger=[1.0] * 9 + [0.0] * 3, champion=[1.0] * 8 + [0.0] * 4, tolerance=0.0,
                                  min_pairs=50, when_insufficient="keep").as_dict()
        v4 = completed_version(
            project, version=4, promote=False,
            metrics={"accuracy": 0.75, "accuracy_ci": [0.468, 0.911], "pairs": 12},
            champion_metrics={"accuracy": 0.667, "accuracy_ci": [0.391, 0.862], "pairs": 12}, gate=gate,
        )
        page.reload()
        page.wait_for_selector(f"[data-testid=version-gate-{v4.id}]")
        page.locator("[data-testid=model-versions]").screenshot(
            path=str(Path(os.environ["WORKBENCH_SCREENSHOTS"]) / "results-versions.png")
        )


def test_version_with_too_few_evaluation_pairs_says_so(page, live_server, login, browser_user, make_browser_project, sent_tasks):
    from training.promotion import promotion_decision

    admin = browser_user("root", admin=True)
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    completed_version(
        project, version=1, promote=True, metrics={"accuracy": 0.6, "accuracy_ci": [0.36, 0.8], "pairs": 10},
        champion_metrics={}, gate={},  # a version from before the gate was recorded
    )
    # 10 held-out pairs, 50 needed: the gate keeps the champion whatever the accuracies say.
    gate = promotion_decision(challenger=[1.0] * 8 + [0.0] * 2, champion=[1.0] * 6 + [0.0] * 4, tolerance=0.0,
                              min_pairs=50, when_insufficient="keep").as_dict()
    assert gate["outcome"] == "insufficient_data" and not gate["promote"]
    v2 = completed_version(
        project, version=2, promote=False, metrics={"accuracy": 0.8, "accuracy_ci": [0.49, 0.94], "pairs": 10},
        champion_metrics={"accuracy": 0.6, "accuracy_ci": [0.31, 0.83], "pairs": 10}, gate=gate,
    )

    open_results(page, live_server, login, admin, project)
    page.wait_for_selector(f"[data-testid=version-gate-{v2.id}]")
    cell = page.inner_text(f"[data-testid=version-gate-{v2.id}]")
    assert cell.startswith("not enough evaluation data\n")
    assert gate["reason"] in cell
    assert "10 held-out pairs, fewer than the 50 the gate needs; the champion keeps serving" in cell
    assert page.inner_text(f"[data-testid=version-accuracy-{v2.id}]") == "80.0 % (49–94) · 10 pairs"
    assert page.inner_text(f"[data-testid=version-difference-{v2.id}]") == "+20.0 pts (−6.1 to +46.1)"
    assert ModelVersion.objects.get(id=v2.id).status == "rejected"


def test_champion_card_shows_a_failed_scoring(page, live_server, login, browser_user, make_browser_project, sent_tasks):
    admin = browser_user("root", admin=True)
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    version = finished_version(project, version=1, promote=True, accuracy=0.8)
    services.model_version_scoring_fail(version_id=version.id, error="CUDA out of memory")

    open_results(page, live_server, login, admin, project)
    page.wait_for_selector("[data-testid=champion-scoring-error]:not([hidden])")
    assert page.inner_text("[data-testid=champion-scoring-error]") == (
        "Scoring failed (attempt 1): CUDA out of memory — retrying automatically"
    )

    # The retry gets through: the error goes away once every response has its score.
    from annotation.models import Response

    services.response_scores_store(
        version_id=version.id, scores={response.id: 0.0 for response in Response.objects.filter(prompt__project=project)}
    )
    assert services.model_version_scoring_finish(version_id=version.id)
    page.wait_for_selector("[data-testid=champion-scoring-error]", state="hidden")


def test_policy_form_shows_the_time_zone_and_saves_the_gate_settings(
    page, live_server, login, browser_user, make_browser_project, settings
):
    admin = browser_user("root", admin=True)
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])

    open_results(page, live_server, login, admin, project)
    page.wait_for_function("() => document.querySelector('[name=nightly_at]').value !== ''")
    assert page.inner_text("[data-testid=policy-time-zone]") == settings.TIME_ZONE
    assert page.inner_text("[data-testid=policy-next-nightly]") == "Next nightly run: after the first label"
    placeholder = page.get_attribute("[name=min_evaluation_pairs]", "placeholder")
    assert placeholder == f"{settings.PROMOTION_MIN_EVALUATION_PAIRS} (default)"
    assert page.input_value("[name=when_evaluation_insufficient]") == "keep"

    page.fill("[data-testid=policy-nightly-at]", "04:30")
    page.fill("[data-testid=policy-min-evaluation-pairs]", "120")
    page.select_option("[data-testid=policy-when-evaluation-insufficient]", "promote_if_not_worse")
    page.click("[data-testid=save-policy]")
    page.wait_for_selector("text=Training policy saved.")

    policy = TrainingPolicy.objects.get(project=project)
    assert (policy.min_evaluation_pairs, policy.when_evaluation_insufficient) == (120, "promote_if_not_worse")
    # Changing the time restarts the schedule: the next run is the next 04:30 in the server's zone.
    from training.selectors import next_nightly_at

    due = next_nightly_at(policy).astimezone(ZoneInfo(settings.TIME_ZONE))
    shown = page.inner_text("[data-testid=policy-next-nightly]")
    assert shown.startswith("Next nightly run: " + due.strftime("%a %-d ")), shown
    assert shown.endswith(f" 04:30 {settings.TIME_ZONE}"), shown

    page.fill("[data-testid=policy-min-evaluation-pairs]", "")  # back to the server default
    page.fill("[data-testid=policy-nightly-at]", "")  # nightly retrains off
    page.click("[data-testid=save-policy]")
    page.wait_for_function("() => document.querySelector('[data-testid=policy-next-nightly]').textContent === 'Next nightly run: off'")
    policy.refresh_from_db()
    assert (policy.min_evaluation_pairs, policy.nightly_at) == (None, None)


def test_admin_sees_each_criterion_head_and_chooses_which_one_orders_items(
    page, live_server, login, browser_user, make_browser_project, sent_tasks
):
    from annotation.models import Response
    from training.models import ResponseScore

    admin = browser_user("root", admin=True)
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    project.criteria = [{"key": "helpfulness", "label": "Helpfulness", "scale": 5},
                        {"key": "harmlessness", "label": "Harmlessness", "scale": 5}]
    project.save(update_fields=["criteria"])
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    heads = {"helpfulness": {"accuracy": 0.9, "pairs": 40, "check": {"outcome": "not_worse", "reason": "Not shown worse."}},
             "harmlessness": {"accuracy": 0.6, "pairs": 40, "check": {"outcome": "worse", "reason": "Shown worse."}}}
    version = services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path=f"project-{project.id}/v1",
        metrics={"accuracy": 0.8, "loss": 0.5, "pairs": 40, "criteria": heads}, champion_metrics={}, promote=True,
        config={"criteria": ["helpfulness", "harmlessness"]}, seed=0, code_version="test",
    )
    one, two = Response.objects.filter(prompt__project=project).order_by("id")
    services.response_scores_store(version_id=version.id, scores={one.id: 1.5, two.id: -0.5},
                                   criterion_scores={one.id: {"helpfulness": 2.25, "harmlessness": -1.0},
                                                     two.id: {"helpfulness": -0.75, "harmlessness": 0.5}})
    services.model_version_scoring_finish(version_id=version.id)
    assert ResponseScore.objects.filter(model_version=version).count() == 2

    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_selector(f"[data-testid=criterion-score-{one.id}-harmlessness]")
    assert page.inner_text(f"[data-testid=criterion-score-{one.id}-helpfulness]") == "helpfulness 2.250"
    assert page.inner_text(f"[data-testid=criterion-score-{two.id}-harmlessness]") == "harmlessness 0.500"
    line = page.inner_text(f"[data-testid=version-criterion-{version.id}-harmlessness]")
    assert line == "harmlessness 60.0 % · 40 pairs · worse"
    assert page.inner_text(f"[data-testid=version-accuracy-{version.id}]").startswith("80.0 % · 40 pairs\nhelpfulness 90.0 %")
    if os.environ.get("WORKBENCH_SCREENSHOTS"):
        page.screenshot(path=str(Path(os.environ["WORKBENCH_SCREENSHOTS"]) / "results-criteria.png"), full_page=True)

    page.wait_for_function("() => document.querySelector('[name=nightly_at]').value !== ''")  # policy loaded
    page.select_option("[data-testid=policy-priority-head]", "harmlessness")
    page.click("[data-testid=save-policy]")
    page.wait_for_selector("text=Training policy saved.")
    assert TrainingPolicy.objects.get(project=project).priority_head == "harmlessness"
    assert ("training.tasks.refresh_item_priorities", version.id) in sent_tasks

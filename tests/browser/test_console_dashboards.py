"""The project dashboard in Chromium: every chart drawn from the API's series, and the Results page's
cards following the server without a reload.

Writes docs' console-dashboard.png into a temporary folder unless CONSOLE_SCREENSHOTS names one:

    CONSOLE_SCREENSHOTS=docs/screenshots pytest tests/browser/test_console_dashboards.py
"""
import datetime
import math
import os
import uuid
from pathlib import Path

import pytest
from django.utils import timezone

from tests.browser.helpers import record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHARTS = ("labels-per-day", "labels-per-hour", "agreement", "accuracy", "loss")


def put_label(item, user, *, at, first_wins=True):
    from annotation.models import Label

    low, high = sorted(item.slots.values_list("response_id", flat=True))
    label = Label.objects.create(
        item=item, annotator=user, client_id=uuid.uuid4(), ranking=[[low], [high]] if first_wins else [[high], [low]],
        display_order=[low, high],
    )
    Label.objects.filter(id=label.id).update(created_at=at)


def make_version(project, number, *, accuracy, pairs, status, loss_curve):
    from training.models import ModelVersion, TrainingRun

    run = TrainingRun.objects.create(project=project, trigger="manual", status="succeeded", loss_curve=loss_curve)
    return ModelVersion.objects.create(
        project=project, version=number, training_run=run, status=status, checkpoint_path=f"v{number}",
        metrics={"accuracy": accuracy, "pairs": pairs}, data_sha256="0" * 64, seed=0,
    )


@pytest.fixture
def busy_project(make_browser_project, browser_user):
    """Three annotators' labels over the last weeks, two model versions and their loss curves."""
    from annotation.models import ComparisonItem

    annotators = [browser_user(name) for name in ("alice", "bruno", "chen")]
    lines = [record(f"p{index:02d}", f"Question {index}?", [(f"Answer A{index}", "alpha"), (f"Answer B{index}", "beta")]) for index in range(40)]
    project = make_browser_project(lines=lines, annotators=annotators, labels_per_item=3)
    items = list(ComparisonItem.objects.filter(project=project).order_by("id"))
    now = timezone.now()
    for index, item in enumerate(items):
        at = now - datetime.timedelta(hours=index * 9 + 1)  # spread over about 15 days
        for position, user in enumerate(annotators[: 1 + index % 3]):
            put_label(item, user, at=at - datetime.timedelta(minutes=position), first_wins=(index + position) % 4 != 3)
    curve = lambda scale: [[step, round(0.7 * math.exp(-step / scale) + 0.2, 4)] for step in range(1, 121)]  # noqa: E731
    make_version(project, 1, accuracy=0.68, pairs=60, status="retired", loss_curve=curve(30))
    make_version(project, 2, accuracy=0.74, pairs=90, status="champion", loss_curve=curve(45))
    return project


def chart_data(page, name):
    """The data of the chart on ``name``'s canvas, read from Chart.js's own instance."""
    return page.evaluate(
        """(name) => {
            const chart = Chart.getChart(document.querySelector('[data-chart="' + name + '"]'));
            return chart ? { labels: chart.data.labels, datasets: chart.data.datasets.map((d) => ({ label: d.label, data: d.data })) } : null;
        }""",
        name,
    )


def test_the_dashboard_draws_every_chart_with_data(page, live_server, login, browser_user, busy_project, tmp_path):
    from annotation.models import Label

    login(browser_user("dash-admin", admin=True))
    page.goto(f"{live_server.url}/projects/{busy_project.id}/results/")
    page.click("[data-testid=dashboard-link]")
    page.wait_for_url(f"{live_server.url}/projects/{busy_project.id}/dashboard/")
    page.wait_for_selector("#dashboard[data-loaded=true]")

    assert page.locator("#dashboard canvas").count() == 5
    for name in CHARTS:
        assert chart_data(page, name) is not None, name
        assert page.locator(f"[data-testid=empty-{name}]").is_hidden(), name

    # Labels per day: one stack per annotator, and the stacks add up to every label of the window.
    per_day = chart_data(page, "labels-per-day")
    assert len(per_day["labels"]) == 30
    assert {dataset["label"] for dataset in per_day["datasets"]} == {"alice", "bruno", "chen"}
    assert sum(sum(dataset["data"]) for dataset in per_day["datasets"]) == Label.objects.filter(item__project=busy_project).count()
    alice = next(dataset for dataset in per_day["datasets"] if dataset["label"] == "alice")
    assert sum(alice["data"]) == 40

    per_hour = chart_data(page, "labels-per-hour")
    assert len(per_hour["labels"]) == 48 and sum(per_hour["datasets"][0]["data"]) > 0

    agreement = chart_data(page, "agreement")
    assert len(agreement["labels"]) == 8
    assert any(value is not None and 0 <= value <= 1 for value in agreement["datasets"][0]["data"])

    # Accuracy per version: the point and its (Wilson) interval around it.
    accuracy = chart_data(page, "accuracy")
    assert accuracy["labels"] == ["v1", "v2"]
    assert accuracy["datasets"][1]["data"] == [0.68, 0.74]
    low, high = accuracy["datasets"][0]["data"][1]
    assert low < 0.74 < high

    # The loss chart shows the newest run; another run can be picked.
    loss = chart_data(page, "loss")
    assert len(loss["datasets"][0]["data"]) == 120 and loss["datasets"][0]["data"][0]["x"] == 1
    first_newest = loss["datasets"][0]["data"][9]["y"]
    options = page.eval_on_selector_all("[data-testid=loss-run] option", "options => options.map((o) => o.value)")
    assert len(options) == 2
    page.select_option("[data-testid=loss-run]", options[1])
    page.wait_for_function(
        "(y) => Chart.getChart(document.querySelector('[data-chart=loss]')).data.datasets[0].data[9].y !== y", arg=first_newest
    )

    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.evaluate("document.getElementById('toasts').replaceChildren()")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(folder / "console-dashboard.png"), full_page=True)


def test_an_empty_project_says_so_on_every_chart(page, live_server, login, browser_user, make_browser_project):
    project = make_browser_project(lines=[record("p0", "Q?", [("A", "alpha"), ("B", "beta")])])
    login(browser_user("empty-admin", admin=True))
    page.goto(f"{live_server.url}/projects/{project.id}/dashboard/")
    page.wait_for_selector("#dashboard[data-loaded=true]")
    for name in CHARTS:
        assert page.locator(f"[data-testid=empty-{name}]").is_visible(), name


def test_results_cards_follow_a_new_model_version_without_a_reload(page, live_server, login, browser_user, busy_project):
    from training.models import TrainingPolicy

    login(browser_user("live-admin", admin=True))
    page.goto(f"{live_server.url}/projects/{busy_project.id}/results/")
    page.wait_for_selector("[data-testid=model-versions] tr[data-testid^=version-]")
    assert page.locator("[data-testid=model-versions] tbody tr").count() == 2
    page.wait_for_selector("[data-region=policy-form][data-loaded=true]")

    # Elsewhere (a worker, another tab): a third version becomes champion, the policy changes.
    from training.models import ModelVersion

    ModelVersion.objects.filter(project=busy_project, status="champion").update(status="retired")
    version = make_version(busy_project, 3, accuracy=0.81, pairs=120, status="champion", loss_curve=[[1, 0.5]])
    TrainingPolicy.objects.update_or_create(project=busy_project, defaults={"replay_ratio": 4.5})

    page.wait_for_selector(f"[data-testid=version-{version.id}]", timeout=10_000)
    assert "81.0 %" in page.inner_text(f"[data-testid=version-accuracy-{version.id}]")
    page.wait_for_selector("[data-testid=champion-version]:has-text('v3')", timeout=10_000)
    # The policy form follows too (at its slower rate), since nobody is editing it.
    page.wait_for_function("() => document.querySelector('[name=replay_ratio]').value === '4.5'", timeout=25_000)


def test_the_policy_form_being_edited_is_not_overwritten(page, live_server, login, browser_user, busy_project):
    from training.models import TrainingPolicy

    login(browser_user("edit-admin", admin=True))
    page.goto(f"{live_server.url}/projects/{busy_project.id}/results/")
    page.wait_for_selector("[data-region=policy-form][data-loaded=true]")
    page.fill("[name=replay_ratio]", "7")
    page.locator("[name=replay_ratio]").blur()
    TrainingPolicy.objects.update_or_create(project=busy_project, defaults={"replay_ratio": 2})
    page.wait_for_timeout(17_000)  # past the form's refresh interval
    assert page.input_value("[name=replay_ratio]") == "7"

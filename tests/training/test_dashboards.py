"""training.dashboards and GET /api/projects/{id}/dashboard/: the series on hand-built labels, and access."""
import datetime
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation.models import ComparisonItem, Label
from training import dashboards
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db

UTC = datetime.timezone.utc
# A Monday noon, so the week arithmetic is easy to read.
NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def url(project):
    return f"/api/projects/{project.id}/dashboard/"


@pytest.fixture
def items(make_project):
    project = make_project(prompts=12)
    return project, list(ComparisonItem.objects.filter(project=project).order_by("id"))


def put_label(item, user, *, at, first_wins=True, both_bad=False) -> Label:
    """A label of ``item`` by ``user`` created at ``at``: the lower response id wins unless ``first_wins`` is False."""
    low, high = sorted(item.slots.values_list("response_id", flat=True))
    ranking = [[low], [high]] if first_wins else [[high], [low]]
    if both_bad:
        ranking = [[low, high]]
    label = Label.objects.create(
        item=item, annotator=user, client_id=uuid.uuid4(), ranking=ranking, display_order=[low, high], both_bad=both_bad
    )
    Label.objects.filter(id=label.id).update(created_at=at)  # created_at is auto_now_add
    return label


def window(now=NOW):
    return dashboards.DashboardWindow(now=now)


# --- labels per day -----------------------------------------------------------------


def test_labels_per_day_counts_each_annotator_per_day_with_zeros_filled(items, make_user):
    project, item_list = items
    ann, bob = make_user("ann"), make_user("bob")
    put_label(item_list[0], ann, at=NOW - datetime.timedelta(hours=1))
    put_label(item_list[1], ann, at=NOW - datetime.timedelta(hours=2))
    put_label(item_list[2], ann, at=NOW - datetime.timedelta(days=1))
    put_label(item_list[0], bob, at=NOW - datetime.timedelta(days=29, hours=11))  # the window's first day, 01:00
    put_label(item_list[1], bob, at=NOW - datetime.timedelta(days=30))  # the day before the window

    series = dashboards.labels_per_day(project, window=window())

    assert len(series["days"]) == 30
    assert series["days"][0] == datetime.date(2026, 11, 1) and series["days"][-1] == datetime.date(2026, 11, 30)
    by_name = {row["username"]: row for row in series["annotators"]}
    assert [row["username"] for row in series["annotators"]] == ["ann", "bob"]  # most labels first
    assert by_name["ann"]["counts"][-1] == 2 and by_name["ann"]["counts"][-2] == 1 and by_name["ann"]["total"] == 3
    assert by_name["bob"]["counts"][0] == 1 and by_name["bob"]["total"] == 1
    assert sum(by_name["ann"]["counts"][:-2]) == 0


def test_labels_per_day_counts_days_in_the_server_time_zone(items, make_user, settings):
    settings.TIME_ZONE = "Europe/Berlin"  # UTC+1 in November
    project, item_list = items
    ann = make_user("ann")
    put_label(item_list[0], ann, at=datetime.datetime(2026, 11, 29, 23, 30, tzinfo=UTC))  # 30 Nov 00:30 in Berlin
    put_label(item_list[1], ann, at=datetime.datetime(2026, 11, 29, 22, 30, tzinfo=UTC))  # 29 Nov 23:30 in Berlin

    series = dashboards.labels_per_day(project, window=window())

    assert series["annotators"][0]["counts"][-2:] == [1, 1]


def test_labels_per_day_leaves_out_other_projects(items, make_project, make_user):
    project, item_list = items
    other = make_project("Other", prompts=2)
    ann = make_user("ann")
    put_label(ComparisonItem.objects.filter(project=other).first(), ann, at=NOW - datetime.timedelta(hours=1))

    assert dashboards.labels_per_day(project, window=window())["annotators"] == []


# --- labels per hour -------------------------------------------------------------------


def test_labels_per_hour_counts_the_last_48_hours(items, make_user):
    project, item_list = items
    ann, bob = make_user("ann"), make_user("bob")
    put_label(item_list[0], ann, at=NOW - datetime.timedelta(minutes=1))  # 11:59: the previous hour
    put_label(item_list[1], ann, at=NOW - datetime.timedelta(minutes=50))  # 11:10
    put_label(item_list[0], bob, at=NOW + datetime.timedelta(seconds=0))  # 12:00: the current hour
    put_label(item_list[2], ann, at=NOW - datetime.timedelta(hours=47))  # 13:00 two days ago: the first hour
    put_label(item_list[3], ann, at=NOW - datetime.timedelta(hours=48))  # 12:00 two days ago: outside

    series = dashboards.labels_per_hour(project, window=window())

    assert len(series["hours"]) == len(series["counts"]) == 48
    assert series["hours"][-1] == NOW and series["hours"][0] == NOW - datetime.timedelta(hours=47)
    assert series["counts"][-1] == 1 and series["counts"][-2] == 2 and series["counts"][0] == 1
    assert sum(series["counts"]) == 4


# --- agreement per week ------------------------------------------------------------------


def test_agreement_per_week_compares_labels_made_in_the_same_week(items, make_user):
    project, item_list = items
    ann, bob = make_user("ann"), make_user("bob")
    this_week = NOW - datetime.timedelta(hours=1)
    last_week = NOW - datetime.timedelta(days=3)
    # This week: one item agreed on, one disagreed on.
    put_label(item_list[0], ann, at=this_week)
    put_label(item_list[0], bob, at=this_week)
    put_label(item_list[1], ann, at=this_week, first_wins=True)
    put_label(item_list[1], bob, at=this_week, first_wins=False)
    # Split across weeks: never compared. Both bad: no preference, left out.
    put_label(item_list[2], ann, at=last_week)
    put_label(item_list[2], bob, at=this_week)
    put_label(item_list[3], ann, at=last_week)
    put_label(item_list[3], bob, at=last_week, both_bad=True)

    points = dashboards.agreement_per_week(project, window=window())

    assert [point["week"] for point in points][-2:] == [datetime.date(2026, 11, 23), datetime.date(2026, 11, 30)]
    assert len(points) == 8
    assert points[-1] == {"week": datetime.date(2026, 11, 30), "agreement": 0.5, "comparisons": 2, "labels": 5, "capped": False}
    assert points[-2] == {"week": datetime.date(2026, 11, 23), "agreement": None, "comparisons": 0, "labels": 2, "capped": False}


def test_agreement_per_week_reads_at_most_the_cap_and_whole_items(items, make_user, monkeypatch):
    monkeypatch.setattr(dashboards, "AGREEMENT_LABELS_PER_WEEK", 3)
    project, item_list = items
    ann, bob = make_user("ann"), make_user("bob")
    at = NOW - datetime.timedelta(hours=1)
    for item in item_list[:2]:
        put_label(item, ann, at=at)
        put_label(item, bob, at=at)

    point = dashboards.agreement_per_week(project, window=window())[-1]

    # Three labels read: the first item whole, the second cut in two and dropped.
    assert point == {"week": datetime.date(2026, 11, 30), "agreement": 1.0, "comparisons": 1, "labels": 2, "capped": True}


# --- accuracy per version and loss curves ------------------------------------------------------


def make_version(project, number, *, metrics, status="retired", loss_curve=()):
    run = TrainingRun.objects.create(project=project, trigger="manual", status="succeeded", loss_curve=list(loss_curve))
    return ModelVersion.objects.create(
        project=project, version=number, training_run=run, status=status, checkpoint_path="x", metrics=metrics,
        data_sha256="0" * 64, seed=0,
    )


def test_accuracy_per_version_uses_the_stored_interval_or_a_wilson_one(make_project):
    from training.ml.evaluation import accuracy_interval

    project = make_project(prompts=1)
    make_version(project, 1, metrics={"accuracy": 0.75, "pairs": 40, "accuracy_ci": [0.6, 0.86]})
    make_version(project, 2, metrics={"accuracy": 0.8, "pairs": 10})
    make_version(project, 3, metrics={"accuracy": None, "pairs": 0, "accuracy_ci": None}, status="champion")
    make_version(project, 4, metrics={"accuracy": "high", "pairs": True}, status="rejected")  # hand-written junk

    points = dashboards.accuracy_per_version(project)

    assert [point["version"] for point in points] == [1, 2, 3, 4]
    assert points[0]["interval"] == [0.6, 0.86] and points[0]["interval_source"] == "stored"
    assert points[1]["interval_source"] == "wilson"
    assert points[1]["interval"] == pytest.approx(list(accuracy_interval([1.0] * 8 + [0.0] * 2)))
    assert points[2] == {"version": 3, "status": "champion", "accuracy": None, "pairs": 0, "interval": None, "interval_source": None}
    assert points[3]["accuracy"] is None and points[3]["pairs"] is None and points[3]["interval"] is None


def test_loss_curves_newest_first_only_runs_that_reported_and_at_most_ten(make_project):
    project = make_project(prompts=1)
    for number in range(1, 13):
        make_version(project, number, metrics={}, loss_curve=[[1, 0.7], [2, 0.6]] if number != 12 else [])

    curves = dashboards.loss_curves(project)

    assert [curve["model_version"] for curve in curves] == list(range(11, 1, -1))
    assert curves[0]["points"] == [[1, 0.7], [2, 0.6]]


# --- writing the loss curve ---------------------------------------------------------------


def test_progress_reports_append_to_the_loss_curve(make_project, sent_tasks):
    from training import services

    project = make_project(prompts=1)
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    services.training_run_report_progress(run_id=run.id, progress={"step": 1, "total_steps": 9, "loss": 0.69, "eta_s": 5})
    services.training_run_report_progress(run_id=run.id, progress={"step": 1, "total_steps": 9, "loss": 0.5, "eta_s": 5})
    services.training_run_report_progress(run_id=run.id, progress={"step": 2, "total_steps": 9, "loss": None})
    services.training_run_report_progress(run_id=run.id, progress={"step": 3, "total_steps": 9, "loss": 0.41, "eta_s": 1})

    run.refresh_from_db()
    assert run.loss_curve == [[1, 0.69], [3, 0.41]]  # a repeated step and a missing loss are not drawn
    assert run.progress["step"] == 3

    TrainingRun.objects.filter(id=run.id).update(status="failed")
    services.training_run_report_progress(run_id=run.id, progress={"step": 4, "total_steps": 9, "loss": 0.3})
    run.refresh_from_db()
    assert run.loss_curve == [[1, 0.69], [3, 0.41]]  # a run that is not running is left alone


def test_a_long_run_s_loss_curve_is_thinned_to_at_most_500_points():
    from training.services import LOSS_CURVE_MAX_POINTS, loss_curve_extend

    curve = []
    for step in range(1, 5001):
        curve = loss_curve_extend(curve, [step, 1 / step])
        assert len(curve) <= LOSS_CURVE_MAX_POINTS
    steps = [point[0] for point in curve]
    assert steps[0] < 20 and steps[-1] == 5000  # the whole span, and the newest report last
    assert steps == sorted(steps) and len(curve) > LOSS_CURVE_MAX_POINTS // 4
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert max(gaps) <= 2 * min(gaps)  # evenly thinned, not just the head kept


def test_a_short_run_keeps_every_point():
    from training.services import loss_curve_extend

    curve = []
    for step in (1, 2, 5, 40, 41, 300):
        curve = loss_curve_extend(curve, [step, 0.5])
    assert [point[0] for point in curve] == [1, 2, 5, 40, 41, 300]


# --- the API ----------------------------------------------------------------------------


def test_api_returns_every_series(items, make_user, admin_user, api_client_for):
    project, item_list = items
    ann = make_user("ann")
    now = timezone.now()
    put_label(item_list[0], ann, at=now - datetime.timedelta(minutes=5))
    put_label(item_list[1], ann, at=now - datetime.timedelta(days=2))
    make_version(project, 1, metrics={"accuracy": 0.8, "pairs": 10}, status="champion", loss_curve=[[1, 0.7], [2, 0.5]])

    response = api_client_for(admin_user).get(url(project))

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {
        "generated_at", "time_zone", "labels_per_day", "labels_per_hour", "agreement_per_week", "accuracy_per_version",
        "loss_curves",
    }
    assert body["labels_per_day"]["annotators"][0]["username"] == "ann"
    assert body["labels_per_day"]["annotators"][0]["total"] == 2
    assert sum(body["labels_per_hour"]["counts"]) == 1  # the label of two days ago is outside the 48 hours
    assert len(body["agreement_per_week"]) == 8
    assert body["accuracy_per_version"][0]["interval_source"] == "wilson"
    assert body["loss_curves"][0]["points"] == [[1.0, 0.7], [2.0, 0.5]]


def test_api_costs_the_same_number_of_queries_however_many_labels(items, make_user, admin_user, api_client_for):
    project, item_list = items
    client = api_client_for(admin_user)
    with CaptureQueriesContext(connection) as before:
        assert client.get(url(project)).status_code == 200
    for index in range(6):
        user = make_user(f"user{index}")
        for item in item_list:
            put_label(item, user, at=timezone.now() - datetime.timedelta(days=index * 3))
    with CaptureQueriesContext(connection) as after:
        assert client.get(url(project)).status_code == 200
    assert len(after) == len(before)


def test_api_access(items, make_project, make_user, admin_user, api_client_for, client):
    project, _ = items
    own = make_user("own")
    project.annotators.add(own)
    stranger = make_user("stranger")
    make_project("Elsewhere", prompts=1, annotators=[stranger])
    reviewer = make_user("reviewer")
    project.reviewers.add(reviewer)

    assert client.get(url(project)).status_code in (401, 403)  # anonymous
    assert api_client_for(stranger).get(url(project)).status_code == 404  # another project's annotator
    assert api_client_for(reviewer).get(url(project)).status_code == 404  # reviewers read labels, not the dashboard
    assert api_client_for(own).get(url(project)).status_code == 403  # their own project: admins only
    assert api_client_for(admin_user).get(url(project)).status_code == 200
    assert api_client_for(admin_user).get("/api/projects/999999/dashboard/").status_code == 404
    assert api_client_for(admin_user).get(f"/api/projects/{10**30}/dashboard/").status_code == 404  # past bigint
    assert api_client_for(admin_user).post(url(project), {}).status_code == 405  # read-only


# --- the page ----------------------------------------------------------------------------


def page_url(project):
    return f"/projects/{project.id}/dashboard/"


def test_page_access(items, make_project, make_user, admin_user, client):
    project, _ = items
    own, stranger, reviewer = make_user("own"), make_user("stranger"), make_user("reviewer")
    project.annotators.add(own)
    project.reviewers.add(reviewer)
    make_project("Elsewhere", prompts=1, annotators=[stranger])

    response = client.get(page_url(project))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    for user, expected in ((stranger, 404), (reviewer, 404), (own, 403), (admin_user, 200)):
        client.force_login(user)
        assert client.get(page_url(project)).status_code == expected, user.username
    page = client.get(page_url(project)).content.decode()
    assert f'data-url="/api/projects/{project.id}/dashboard/"' in page
    assert page.count("<canvas") == 5
    assert "<script>" not in page  # the CSP allows no inline script
    assert client.get("/projects/999999/dashboard/").status_code == 404
    assert client.get(f"/projects/{10**30}/dashboard/").status_code == 404


def test_results_page_links_to_the_dashboard(items, admin_user, client):
    project, _ = items
    client.force_login(admin_user)
    assert f'href="/projects/{project.id}/dashboard/"' in client.get(f"/projects/{project.id}/results/").content.decode()

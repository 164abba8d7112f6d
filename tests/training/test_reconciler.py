"""The reconciler keeps training going with nobody watching: triggers, re-sends, sweeps."""
import datetime
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from annotation.assignment import assignment_claim_next
from annotation.models import AnnotatorProgress, Label
from annotation.services import label_submit
from training import dispatch, selectors, services
from training.models import ModelVersion, TrainingRun
from training.reconciler import reconcile_training, request_label_runs

pytestmark = pytest.mark.django_db

TRAIN, RESCORE = dispatch.TRAIN_TASK, dispatch.RESCORE_TASK


def label(project, annotator, count, choice="A"):
    for _ in range(count):
        assignment = assignment_claim_next(project=project, annotator=annotator)
        label_submit(assignment_id=assignment.id, annotator=annotator, choice=choice, client_id=uuid.uuid4())


def finish(run, *, promote=True, version=None):
    """Play the worker: start the run, freeze its snapshot watermark, record a version."""
    services.training_run_start(run_id=run.id)
    watermark = max(Label.objects.filter(item__project=run.project).values_list("id", flat=True), default=0)
    services.training_run_record_snapshot(
        run_id=run.id, path="x", sha256="0" * 64, pairs=1, max_label_id=watermark, label_watermark=watermark, config={}
    )
    number = version or selectors.model_version_next_number(project=run.project)
    return services.training_run_complete(
        run_id=run.id, version=number, checkpoint_path=f"p/v{number}", metrics={"accuracy": 0.8},
        champion_metrics={}, promote=promote, config={}, seed=0, code_version="test",
    )


def test_submitting_labels_never_touches_the_broker_or_training(project, annotator, settings, sent_tasks):
    settings.RETRAIN_EVERY_N_LABELS = 1
    label(project, annotator, 2)
    assert sent_tasks == [] and not TrainingRun.objects.exists()


def test_the_reconciler_requests_a_run_once_enough_labels_arrived(
    make_project, annotator, settings, sent_tasks, django_capture_on_commit_callbacks
):
    settings.RETRAIN_EVERY_N_LABELS = 3
    project = make_project(annotators=[annotator], prompts=6)
    label(project, annotator, 2)
    assert reconcile_training().requested_runs == []
    label(project, annotator, 1)
    with django_capture_on_commit_callbacks(execute=True):
        report = reconcile_training()
    run = TrainingRun.objects.get()
    assert report.requested_runs == [run.id] and run.trigger == "label_count"
    assert sent_tasks == [(TRAIN, run.id)] and run.dispatched_at is not None  # sent after commit
    assert reconcile_training().requested_runs == []  # coalesced with the queued run


def test_the_label_trigger_also_runs_alone_on_its_own_short_tick(make_project, annotator, settings, sent_tasks):
    """Beat's request-label-runs entry: only the label trigger, so it can tick every few seconds."""
    settings.RETRAIN_EVERY_N_LABELS = 2
    due = make_project("Due", annotators=[annotator], prompts=4)
    quiet = make_project("Quiet", annotators=[annotator], prompts=4)
    label(due, annotator, 2)
    label(quiet, annotator, 1)
    requested = request_label_runs()
    run = TrainingRun.objects.get()
    assert requested == [run.id] and run.project == due and run.trigger == "label_count"
    assert request_label_runs() == []  # coalesced with the queued run
    assert settings.CELERY_BEAT_SCHEDULE["request-label-runs"]["task"] == "training.tasks.request_label_runs"


def test_labels_that_arrive_during_a_run_start_the_next_run(make_project, annotator, settings, sent_tasks):
    settings.RETRAIN_EVERY_N_LABELS = 2
    project = make_project(annotators=[annotator], prompts=6)
    label(project, annotator, 2)
    first = reconcile_training().requested_runs[0]
    run = TrainingRun.objects.get(id=first)
    services.training_run_start(run_id=run.id)
    watermark = Label.objects.order_by("-id").first().id
    services.training_run_record_snapshot(
        run_id=run.id, path="x", sha256="0" * 64, pairs=2, max_label_id=watermark, label_watermark=watermark, config={}
    )
    label(project, annotator, 3)  # while the run trains
    assert reconcile_training().requested_runs == []  # one run at a time
    services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path="p/v1", metrics={"accuracy": 0.8}, champion_metrics={},
        promote=True, config={}, seed=0, code_version="test",
    )
    second = services.training_run_request_if_due(project=project)  # what the pipeline calls after a run
    assert second is not None and second.id != run.id and second.trigger == "label_count"


def test_labels_a_run_already_saw_do_not_retrigger_even_if_they_gave_no_pairs(make_project, annotator, settings, sent_tasks):
    settings.RETRAIN_EVERY_N_LABELS = 2
    project = make_project(annotators=[annotator], prompts=4)
    label(project, annotator, 2, choice="tie")  # ties make no training pairs
    run = TrainingRun.objects.get(id=reconcile_training().requested_runs[0])
    finish(run)
    assert reconcile_training().requested_runs == []


def test_a_failed_automatic_run_is_retried_with_growing_waits(project, annotator, settings, sent_tasks):
    settings.RETRAIN_EVERY_N_LABELS = 1
    settings.TRAINING_RETRY_BACKOFF_SECONDS = 100
    # The checks below look up to twelve minutes ahead: run within that of the nightly time (02:00
    # by default), they met tonight's full retrain, which no backoff holds back.
    services.training_policy_update(project=project, nightly_at=None)
    label(project, annotator, 1)
    now = timezone.now()
    for failures, wait in [(1, 100), (2, 200), (3, 400)]:
        run = TrainingRun.objects.get(id=reconcile_training(now=now).requested_runs[0])
        services.training_run_fail(run_id=run.id, error="boom")
        failed_at = TrainingRun.objects.get(id=run.id).finished_at
        assert reconcile_training(now=failed_at + timedelta(seconds=wait - 5)).requested_runs == []
        now = failed_at + timedelta(seconds=wait + 1)
    # Train now is a person asking: no wait.
    assert services.training_run_request(project=project, trigger="manual")[1]


@pytest.mark.django_db(transaction=True)  # commits for real, as in production: the send happens inside the request
def test_with_the_broker_down_train_now_answers_and_the_run_is_sent_when_it_is_back(
    project, admin_user, api_client_for, monkeypatch
):
    def broker_down(*args, **kwargs):
        raise BrokerUnavailable("Error 111 connecting to 127.0.0.1:6390. Connection refused.")

    monkeypatch.setattr(dispatch.app, "send_task", broker_down)
    response = api_client_for(admin_user).post(f"/api/projects/{project.id}/training-runs/")
    assert response.status_code == 202, response.content
    body = response.json()["run"]
    assert body["status"] == "queued" and body["dispatched_at"] is None
    assert body["dispatch_attempts"] == 1 and "Connection refused" in body["waiting"]

    # Another press coalesces onto the waiting run instead of orphaning a second one.
    again = api_client_for(admin_user).post(f"/api/projects/{project.id}/training-runs/").json()
    assert (again["run"]["id"], again["created"]) == (body["id"], False)

    sent = []
    monkeypatch.setattr(dispatch.app, "send_task", lambda name, args, **kwargs: sent.append((name, args)))
    assert reconcile_training().resent_runs == [body["id"]]
    run = TrainingRun.objects.get(id=body["id"])
    assert sent == [(TRAIN, [run.id])] and run.dispatched_at is not None and run.dispatch_error == ""
    runs = api_client_for(admin_user).get(f"/api/projects/{project.id}/training-runs/").json()
    assert runs[0]["waiting"] == "Sent to the workers; waiting for a free training worker."


def test_a_lost_message_is_sent_again_after_a_while(project, settings, sent_tasks):
    settings.TRAINING_REDISPATCH_AFTER_SECONDS = 600
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_dispatch(run_id=run.id)
    now = timezone.now()
    assert reconcile_training(now=now + timedelta(seconds=300)).resent_runs == []
    assert reconcile_training(now=now + timedelta(seconds=601)).resent_runs == [run.id]
    services.training_run_start(run_id=run.id)
    assert reconcile_training(now=now + timedelta(hours=2)).resent_runs == []  # a worker has it


def test_rescoring_that_failed_or_went_silent_is_sent_again_up_to_a_limit(project, settings, sent_tasks):
    settings.SCORING_MAX_ATTEMPTS = 3
    settings.TRAINING_STALE_AFTER_SECONDS = 60
    run, _ = services.training_run_request(project=project, trigger="manual")
    version = finish(run)  # a promoted champion; rescoring is sent after commit (not run in this test)
    now = timezone.now()
    assert reconcile_training(now=now).resent_scoring == [version.id]  # never sent: send it
    assert reconcile_training(now=now + timedelta(seconds=30)).resent_scoring == []  # sent recently
    ModelVersion.objects.filter(id=version.id).update(scoring_heartbeat_at=now + timedelta(seconds=50))
    assert reconcile_training(now=now + timedelta(seconds=61)).resent_scoring == []  # a worker is on it
    assert reconcile_training(now=now + timedelta(seconds=111)).resent_scoring == [version.id]  # it went silent
    services.model_version_scoring_fail(version_id=version.id, error="RuntimeError: out of memory")
    later = timezone.now() + timedelta(seconds=61)
    assert reconcile_training(now=later).resent_scoring == [version.id]  # it failed: third attempt
    assert reconcile_training(now=later + timedelta(seconds=61)).resent_scoring == []  # 3 attempts spent

    version.refresh_from_db()
    assert version.scoring_attempts == 3 and "out of memory" in version.scoring_error
    assert [name for name, _ in sent_tasks].count(RESCORE) == 3

    services.model_version_promote(version=finish(TrainingRun.objects.create(project=project, trigger="manual"), promote=False))
    services.model_version_promote(version=version)  # an admin rolls back: a fresh set of attempts
    version.refresh_from_db()
    assert (version.scoring_attempts, version.scoring_error) == (0, "")  # its send comes after commit


def test_responses_imported_after_scoring_are_scored_by_the_champion_on_the_next_tick(project, settings, sent_tasks):
    from annotation.services import project_import_jsonl
    from tests.conftest import prompt_record
    from training.models import ResponseScore

    settings.TRAINING_STALE_AFTER_SECONDS = 60

    def worker_scores(version):  # what training.pipeline.rescore_project_responses stores
        missing = list(selectors.responses_missing_scores(version).values_list("id", flat=True))
        services.response_scores_store(version_id=version.id, scores={response_id: 0.5 for response_id in missing})
        assert services.model_version_scoring_finish(version_id=version.id)
        return missing

    version = finish(services.training_run_request(project=project, trigger="manual")[0])
    assert len(worker_scores(version)) == 6
    version.refresh_from_db()
    assert version.scored_responses == 6 and version.scoring_attempts == 0
    now = timezone.now()
    assert reconcile_training(now=now).new_responses_scoring == []  # nothing new

    project_import_jsonl(project=project, lines=[prompt_record("late", "A late question?", "Yes.", "No.")], source="late.jsonl")
    sent_tasks.clear()
    assert reconcile_training(now=now).new_responses_scoring == [version.id]
    assert sent_tasks == [(RESCORE, version.id)]
    assert reconcile_training(now=now + timedelta(seconds=30)).new_responses_scoring == []  # on its way
    # The worker died: after the stale time it is sent again; then it scores the two new ones.
    assert reconcile_training(now=timezone.now() + timedelta(seconds=61)).new_responses_scoring == [version.id]
    version.refresh_from_db()
    scored_before = version.scored_at
    assert len(worker_scores(version)) == 2
    version.refresh_from_db()
    assert version.scored_responses == 8 and version.scored_at > scored_before
    assert ResponseScore.objects.filter(model_version=version).count() == 8
    assert sum(model["n"] for model in version.reward_summary["models"].values()) == 8
    assert reconcile_training(now=timezone.now() + timedelta(seconds=200)).new_responses_scoring == []


def test_the_first_nightly_run_is_the_next_occurrence_after_the_first_label(project, annotator, settings, sent_tasks):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.RETRAIN_EVERY_N_LABELS = 0
    services.training_policy_update(project=project, nightly_at=datetime.time(2, 0))
    services.training_policy_update(project=project, mode="full")  # other edits keep the anchor
    berlin = datetime.timezone(datetime.timedelta(hours=1))
    policy = selectors.training_policy_for(project)
    policy.nightly_anchor_at = None  # as for a project whose policy never changed
    policy.save()
    assert selectors.next_nightly_at(policy) is None  # no labels, no nightly run
    label(project, annotator, 1)
    labelled_at = datetime.datetime(2026, 11, 23, 10, 0, tzinfo=berlin)
    Label.objects.update(created_at=labelled_at)
    AnnotatorProgress.objects.update(first_labelled_at=labelled_at)  # as if labelled then

    assert reconcile_training(now=datetime.datetime(2026, 11, 23, 10, 5, tzinfo=berlin)).requested_runs == []
    due = selectors.next_nightly_at(selectors.training_policy_for(project))
    assert due == datetime.datetime(2026, 11, 24, 2, 0, tzinfo=berlin)
    services.training_policy_update(project=project, nightly_at=datetime.time(2, 0))  # the form re-sends it
    assert selectors.next_nightly_at(selectors.training_policy_for(project)) == due  # unchanged time, same anchor
    assert reconcile_training(now=due - timedelta(minutes=1)).requested_runs == []
    run = TrainingRun.objects.get(id=reconcile_training(now=due).requested_runs[0])
    assert (run.trigger, run.mode) == ("schedule", "full")
    services.training_run_fail(run_id=run.id, error="x")
    assert reconcile_training(now=due + timedelta(hours=3)).requested_runs == []  # once a night
    assert len(reconcile_training(now=due + timedelta(days=1)).requested_runs) == 1



def test_the_first_label_comes_from_the_counters_not_a_walk_of_the_labels(make_project, make_user, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotation.services import label_undo

    first, second = make_user("first"), make_user("second")
    older = make_project("Older", annotators=[first], prompts=3)
    label(older, first, 3)  # labels of another project, which the old query walked past
    project = make_project(annotators=[first, second], prompts=4)
    services.training_policy_update(project=project, nightly_at=datetime.time(2, 0))
    policy = selectors.training_policy_for(project)
    policy.nightly_anchor_at = None
    policy.save()
    label(project, second, 1)
    label(project, first, 1)
    earliest = Label.objects.filter(item__project=project).order_by("id").first()
    with CaptureQueriesContext(connection) as queries:
        due = selectors.next_nightly_at(policy)
    assert not any(Label._meta.db_table in query["sql"] for query in queries.captured_queries)
    assert due == selectors.next_nightly_at(policy, first_label_at=earliest.created_at)

    # Undoing the first label keeps the anchor (it was made then); a recount takes the earliest left.
    label_undo(label_id=earliest.id, annotator=second)
    assert selectors.next_nightly_at(policy) == due
    row = AnnotatorProgress.objects.get(project=project, annotator=second)
    assert row.first_labelled_at == earliest.created_at
    from annotation.progress import progress_recount

    progress_recount(project=project)
    row.refresh_from_db()
    assert row.first_labelled_at is None  # no label of theirs is left
    assert AnnotatorProgress.objects.get(project=project, annotator=first).first_labelled_at == (
        Label.objects.get(item__project=project, annotator=first).created_at
    )

def test_changing_the_nightly_time_counts_from_now_and_the_api_shows_the_time_zone(
    project, annotator, admin_user, api_client_for, settings, sent_tasks
):
    settings.TIME_ZONE = "America/New_York"
    label(project, annotator, 1)
    admin = api_client_for(admin_user)
    body = admin.patch(f"/api/projects/{project.id}/training-policy/", {"nightly_at": "03:30"}, format="json").json()
    assert body["time_zone"] == "America/New_York"
    due = datetime.datetime.fromisoformat(body["next_nightly_at"])
    assert due.strftime("%H:%M") == "03:30" and due.utcoffset() in {timedelta(hours=-5), timedelta(hours=-4)}
    assert timezone.now() < due <= timezone.now() + timedelta(days=1)
    off = admin.patch(f"/api/projects/{project.id}/training-policy/", {"nightly_at": None}, format="json").json()
    assert off["next_nightly_at"] is None


def test_a_database_outage_is_a_503_with_retry_after_not_a_500(project, admin_user, api_client_for, monkeypatch):
    from django.db import OperationalError

    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(selectors, "training_runs_for", database_gone)
    response = api_client_for(admin_user).get(f"/api/projects/{project.id}/training-runs/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json()["code"] == "database_unavailable"


def test_a_heartbeat_survives_a_database_blip(settings):
    import threading

    from django.db import OperationalError

    from training.heartbeat import Heartbeat

    settings.TRAINING_HEARTBEAT_SECONDS = 0.01
    beats, third = [], threading.Event()

    def beat():
        beats.append(1)
        if len(beats) == 1:
            raise OperationalError("connection reset")
        if len(beats) >= 3:
            third.set()

    with Heartbeat(beat, name="test"):
        assert third.wait(5), "the heartbeat stopped after one failed write"


@pytest.mark.parametrize("task_name", [TRAIN, RESCORE])
def test_worker_tasks_retry_a_dropped_database_connection_with_backoff(task_name):
    from django.db import OperationalError

    from training import tasks

    task = getattr(tasks, task_name.rsplit(".", 1)[1])
    assert OperationalError in task.autoretry_for and task.retry_backoff and task.max_retries >= 5

"""The loop runs with nobody watching: a broker outage, labels during a run, a worker killed mid-rescoring.

Real parts throughout: PostgreSQL, redis-server processes, gunicorn, celery worker and beat.
"""
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from django.contrib.auth.hashers import make_password

from annotation.models import Label
from annotation.roles import admin_role_set
from tests.integration.conftest import BeatProcess, WebProcess, WorkerProcess, wait_for
from tests.integration.test_training_loop import GOOD, label_good_side, toy_project
from training import services
from training.ml.model import build_tiny_model
from training.models import ModelVersion, ResponseScore, TrainingRun

pytestmark = pytest.mark.integration

FAST_RECONCILER = {"TRAINING_RECONCILE_SECONDS": "1"}
PASSWORD = "x" * 12


def call(web, method, path, *, token, body=None) -> tuple[int, dict]:
    request = urllib.request.Request(
        web.url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Token {token}"} if token else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {"body": error.read().decode(errors="replace")[:2000]}


def token_for(web, user) -> str:
    """Log in over the real API, as a client script would.

    The web process checks the password with the production hasher, not the tests' fast one."""
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])
    username = user.username
    status, body = call(web, "POST", "/api/auth/token/", token=None, body={"username": username, "password": PASSWORD})
    assert status == 200, body
    return body["token"]


def test_a_broker_outage_loses_no_label_and_training_resumes_with_no_human_action(
    start_process, redis_server, django_user_model
):
    broker = redis_server()
    project, annotators = toy_project(django_user_model, name="Outage", prompts=12, annotators=2)
    admin_user = django_user_model.objects.create_user("outage-admin")
    admin_role_set(user=admin_user, is_admin=True)
    env = {"CELERY_BROKER_URL": broker.url, "RETRAIN_EVERY_N_LABELS": "0", **FAST_RECONCILER}
    web = start_process(WebProcess, **env)
    worker = start_process(WorkerProcess, **env)
    start_process(BeatProcess, **env)
    tokens = [token_for(web, user) for user in annotators]
    admin = token_for(web, admin_user)

    broker.stop()
    saved, statuses = 0, []
    for token in tokens * 12:  # the two annotators take turns until the queue is empty
        status, body = call(web, "POST", f"/api/projects/{project.id}/next-item/", token=token, body={})
        statuses.append(status)
        if status != 200 or body["assignment"] is None:
            continue
        assignment = body["assignment"]
        good = next(r["position"] for r in assignment["responses"] if any(r["text"].startswith(g) for g in GOOD))
        status, _ = call(web, "POST", f"/api/assignments/{assignment['id']}/submit/", token=token,
                         body={"choice": good, "client_id": str(uuid.uuid4())})
        statuses.append(status)
        saved += status in (200, 201)
    status, body = call(web, "POST", f"/api/projects/{project.id}/training-runs/", token=admin)
    assert status == 202 and body["run"]["status"] == "queued", body
    assert "Waiting for the broker" in body["run"]["waiting"]

    assert set(statuses) <= {200, 201} and saved == 12  # no 500, every label answered as saved ...
    assert Label.objects.filter(item__project=project).count() == 12  # ... and is there
    run_id = body["run"]["id"]
    assert TrainingRun.objects.get(id=run_id).status == "queued"

    broker.start()  # same port, empty: whatever was in flight is gone
    wait_for(lambda: TrainingRun.objects.get(id=run_id).status in {"succeeded", "failed"}, timeout=240,
             what="the run to be sent again and trained once the broker is back", log=worker.log)
    run = TrainingRun.objects.get(id=run_id)
    assert run.status == "succeeded", run.error
    assert run.dispatch_attempts >= 2 and run.dispatch_error == "" and run.pairs == 12
    assert TrainingRun.objects.filter(project=project).count() == 1  # no orphan, no second run
    version = ModelVersion.objects.get(training_run=run)
    wait_for(lambda: ModelVersion.objects.get(id=version.id).scored_at is not None, timeout=120,
             what="rescoring after the outage", log=worker.log)
    assert " 500 " not in web.log()


def test_labels_submitted_during_a_running_run_trigger_the_next_run(start_process, django_user_model):
    # Enough epochs that the first run is still training while the test labels six more.
    env = {"RETRAIN_EVERY_N_LABELS": "6", "REWARD_EPOCHS": "200", **FAST_RECONCILER}
    project, (annotator,) = toy_project(django_user_model, name="During", prompts=12)
    worker = start_process(WorkerProcess, **env)
    start_process(BeatProcess, **env)
    label_good_side(project, annotator, limit=6)

    wait_for(lambda: TrainingRun.objects.filter(project=project, status="running").exists(), timeout=90,
             what="the label trigger to start a run", log=worker.log)
    first = TrainingRun.objects.get(project=project)
    assert first.trigger == "label_count"
    label_good_side(project, annotator)  # six more while it trains
    assert TrainingRun.objects.get(id=first.id).status == "running", "the first run ended before the test could label"

    wait_for(lambda: TrainingRun.objects.filter(project=project, status="succeeded").count() == 2, timeout=300,
             what="a second run for the labels that arrived during the first", log=worker.log)
    first.refresh_from_db()
    second = TrainingRun.objects.filter(project=project).exclude(id=first.id).get()
    assert (first.pairs, second.pairs, second.trigger) == (6, 12, "label_count")
    assert second.label_watermark == Label.objects.filter(item__project=project).order_by("-id").first().id
    time.sleep(3)  # several reconciler ticks: nothing new to learn, so no third run
    assert TrainingRun.objects.filter(project=project).count() == 2


def test_a_worker_killed_during_rescoring_and_the_scores_still_complete(start_process, settings, django_user_model):
    env = {"SCORING_CHUNK_SIZE": "2", "TRAINING_STALE_AFTER_SECONDS": "3", "TRAINING_HEARTBEAT_SECONDS": "0.5",
           "RETRAIN_EVERY_N_LABELS": "0", **FAST_RECONCILER}
    project, _ = toy_project(django_user_model, name="Rescore", prompts=400)
    settings.MODEL_STORE_DIR.mkdir(parents=True, exist_ok=True)
    build_tiny_model(settings.MODEL_STORE_DIR / "rescore" / "v1")
    first = start_process(WorkerProcess, **env)
    start_process(BeatProcess, **env)

    run = TrainingRun.objects.create(project=project, trigger="manual", status="running")  # the test plays the trainer
    version = services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path="rescore/v1", metrics={"accuracy": 0.9}, champion_metrics={},
        promote=True, config={"max_length": 64}, seed=0, code_version="test",
    )  # a new champion: rescoring of 800 responses is sent after commit

    wait_for(lambda: ResponseScore.objects.filter(model_version=version).count() >= 20, timeout=120,
             what="rescoring to make progress", log=first.log)
    first.kill()
    scored_before = ResponseScore.objects.filter(model_version=version).count()
    assert scored_before < 800, "rescoring finished before the kill; make it slower"
    first_sent = ModelVersion.objects.get(id=version.id).scoring_dispatched_at

    second = start_process(WorkerProcess, **env)
    wait_for(lambda: ModelVersion.objects.get(id=version.id).scored_at is not None, timeout=180,
             what="the reconciler to send rescoring again and a new worker to finish it", log=second.log)
    version.refresh_from_db()
    assert ResponseScore.objects.filter(model_version=version).count() == 800
    # Sent again by the reconciler; a finished scoring then starts its tries afresh (for top-ups).
    assert version.scoring_dispatched_at > first_sent and version.scoring_error == ""
    assert version.scoring_attempts == 0 and version.scored_responses == 800

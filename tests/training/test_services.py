"""Triggers coalesce into one run per project; runs advance and record versions."""
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.assignment import assignment_claim_next
from annotation.services import label_submit
from training import services
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


def label_everything(project, annotator, choice="A"):
    while (assignment := assignment_claim_next(project=project, annotator=annotator)) is not None:
        label_submit(assignment_id=assignment.id, annotator=annotator, choice=choice, client_id=uuid.uuid4())


def test_requests_coalesce_while_a_run_is_active(project, sent_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        first, created = services.training_run_request(project=project, trigger=TrainingRun.Trigger.MANUAL)
    assert created and len(callbacks) == 1  # the task is sent after commit, once

    again, created_again = services.training_run_request(project=project, trigger=TrainingRun.Trigger.SCHEDULE)
    assert (again.id, created_again) == (first.id, False)

    services.training_run_start(run_id=first.id)
    services.training_run_fail(run_id=first.id, error="boom")
    third, created = services.training_run_request(project=project, trigger=TrainingRun.Trigger.CLI)
    assert created and third.id != first.id


def test_database_rejects_two_active_runs_for_one_project(project):
    TrainingRun.objects.create(project=project, trigger=TrainingRun.Trigger.MANUAL)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingRun.objects.create(project=project, trigger=TrainingRun.Trigger.MANUAL, status=TrainingRun.Status.RUNNING)


def test_stale_running_run_is_failed_so_the_project_can_train_again(project):
    run, _ = services.training_run_request(project=project, trigger=TrainingRun.Trigger.MANUAL)
    services.training_run_start(run_id=run.id)
    TrainingRun.objects.filter(id=run.id).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    fresh, created = services.training_run_request(project=project, trigger=TrainingRun.Trigger.MANUAL)
    assert created
    run.refresh_from_db()
    assert run.status == "failed" and "stopped sending heartbeats" in run.error


def test_start_is_idempotent(project):
    run, _ = services.training_run_request(project=project, trigger=TrainingRun.Trigger.MANUAL)
    assert services.training_run_start(run_id=run.id) is not None
    assert services.training_run_start(run_id=run.id) is None  # a redelivered task does nothing
    assert services.training_run_start(run_id=run.id + 999) is None


def complete(run, *, version, promote, accuracy=0.8):
    services.training_run_start(run_id=run.id)
    return services.training_run_complete(
        run_id=run.id, version=version, checkpoint_path=f"project-x/v{version}", metrics={"accuracy": accuracy},
        champion_metrics={}, promote=promote, config={}, seed=0, code_version="test",
    )


def test_promotion_retires_the_old_champion_and_rejection_keeps_it(project, django_capture_on_commit_callbacks):
    first_run, _ = services.training_run_request(project=project, trigger="manual")
    with django_capture_on_commit_callbacks() as callbacks:
        v1 = complete(first_run, version=1, promote=True)
    assert v1.status == "champion" and len(callbacks) == 1  # rescoring queued for the new champion

    second_run, _ = services.training_run_request(project=project, trigger="manual")
    with django_capture_on_commit_callbacks() as callbacks:
        v2 = complete(second_run, version=2, promote=False, accuracy=0.5)
    assert v2.status == "rejected" and callbacks == []
    assert ModelVersion.objects.get(status="champion") == v1

    third_run, _ = services.training_run_request(project=project, trigger="manual")
    v3 = complete(third_run, version=3, promote=True)
    assert v3.parent == v1
    assert list(ModelVersion.objects.order_by("version").values_list("status", flat=True)) == ["retired", "rejected", "champion"]


def test_policy_rejects_bad_values_and_strangers(project, make_user):
    from config.errors import DomainError

    with pytest.raises(DomainError, match="mode"):
        services.training_policy_update(project=project, mode="sometimes")
    with pytest.raises(DomainError, match="annotators of this project"):
        services.training_policy_update(project=project, excluded_annotator_ids=[make_user("outsider").id])


def test_silent_running_runs_are_failed_by_the_sweeper(project, settings):
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id, worker="gpu-1:42")
    assert services.training_runs_fail_stale() == 0
    TrainingRun.objects.filter(id=run.id).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.TRAINING_STALE_AFTER_SECONDS + 1)
    )
    assert services.training_runs_fail_stale() == 1
    run.refresh_from_db()
    assert run.status == "failed" and "heartbeats" in run.error and run.worker == "gpu-1:42"


def test_manual_promotion_and_rollback(project, django_capture_on_commit_callbacks):
    first_run, _ = services.training_run_request(project=project, trigger="manual")
    v1 = complete(first_run, version=1, promote=True)
    second_run, _ = services.training_run_request(project=project, trigger="manual")
    v2 = complete(second_run, version=2, promote=False)

    with django_capture_on_commit_callbacks() as callbacks:
        services.model_version_promote(version=v2)  # an admin overrides the gate
    assert len(callbacks) == 1  # v2 never scored anything: rescoring is queued
    assert ModelVersion.objects.get(status="champion") == v2

    services.model_version_promote(version=v1)  # roll back
    v1.refresh_from_db(), v2.refresh_from_db()
    assert (v1.status, v2.status) == ("champion", "retired")
    from config.errors import ConflictError

    with pytest.raises(ConflictError):
        services.model_version_promote(version=v1)


def test_policy_and_promotion_api_are_admin_only(api_client_for, project, annotator, admin_user):
    url = f"/api/projects/{project.id}/training-policy/"
    assert api_client_for(annotator).get(url).status_code == 403
    admin = api_client_for(admin_user)
    assert admin.get(url).json()["mode"] == "full"
    changed = admin.patch(url, {"mode": "incremental", "nightly_at": "03:15", "excluded_annotator_ids": [annotator.id]}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["mode"], changed.json()["nightly_at"], changed.json()["excluded_annotator_ids"]) == (
        "incremental", "03:15:00", [annotator.id],
    )
    assert admin.patch(url, {"aggregation": "vibes"}, format="json").status_code == 400

    run, _ = services.training_run_request(project=project, trigger="manual")
    version = complete(run, version=1, promote=False)
    assert api_client_for(annotator).post(f"/api/model-versions/{version.id}/promote/").status_code == 403
    promoted = admin.post(f"/api/model-versions/{version.id}/promote/")
    assert promoted.status_code == 200 and promoted.json()["is_champion"] is True
    assert admin.post(f"/api/model-versions/{version.id}/promote/").status_code == 409

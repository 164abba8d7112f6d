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
from training.tasks import retrain_all_projects

pytestmark = pytest.mark.django_db


def label_everything(project, annotator, choice="A"):
    while (assignment := assignment_claim_next(project=project, annotator=annotator)) is not None:
        label_submit(assignment_id=assignment.id, annotator=annotator, choice=choice, client_id=uuid.uuid4())


def test_requests_coalesce_while_a_run_is_active(project, django_capture_on_commit_callbacks):
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


def test_retrain_after_n_new_labels(project, annotator, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.RETRAIN_EVERY_N_LABELS = 2
    sent = []
    monkeypatch.setattr(services, "_enqueue_training", sent.append)
    assignment = assignment_claim_next(project=project, annotator=annotator)
    with django_capture_on_commit_callbacks(execute=True):
        label_submit(assignment_id=assignment.id, annotator=annotator, choice="A", client_id=uuid.uuid4())
    assert not TrainingRun.objects.exists()

    assignment = assignment_claim_next(project=project, annotator=annotator)
    with django_capture_on_commit_callbacks(execute=True):
        label_submit(assignment_id=assignment.id, annotator=annotator, choice="B", client_id=uuid.uuid4())
    run = TrainingRun.objects.get()
    assert (run.trigger, run.label_count) == ("label_count", 2)
    assert sent == [run.id]


def test_stale_running_run_is_failed_so_the_project_can_train_again(project):
    run, _ = services.training_run_request(project=project, trigger=TrainingRun.Trigger.MANUAL)
    services.training_run_start(run_id=run.id)
    TrainingRun.objects.filter(id=run.id).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    fresh, created = services.training_run_request(project=project, trigger=TrainingRun.Trigger.MANUAL)
    assert created
    run.refresh_from_db()
    assert run.status == "failed" and "stopped reporting" in run.error


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


def test_nightly_fan_out_requests_runs_for_labelled_projects_only(make_project, annotator):
    labelled = make_project("Labelled", annotators=[annotator])
    make_project("Untouched", annotators=[annotator])
    label_everything(labelled, annotator)
    run_ids = retrain_all_projects()
    assert list(TrainingRun.objects.filter(id__in=run_ids).values_list("project__name", "trigger")) == [("Labelled", "schedule")]

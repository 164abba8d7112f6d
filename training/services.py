"""Writes for the training side: requesting runs, advancing their status, recording versions.

Every trigger (label count, nightly schedule, the UI button, the CLI) goes through
``training_run_request``, which coalesces: while a project has a queued or running
run, a new request returns that run instead of starting another. The partial
unique index ``training_run_one_active_per_project`` backs this up in the database.
"""
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from annotation.models import Label, Project
from config.errors import ConflictError, NotFoundError
from training.models import ModelVersion, ResponseScore, TrainingRun

logger = logging.getLogger(__name__)

# A running run whose worker has not reported for this long is presumed dead
# (killed worker, lost machine): it is marked failed so the project can train again.
STALE_RUN_AFTER = timedelta(minutes=30)


def _enqueue_training(run_id: int) -> None:
    from training.tasks import train_reward_model

    train_reward_model.delay(run_id)


def _enqueue_scoring(version_id: int) -> None:
    from training.tasks import rescore_responses

    rescore_responses.delay(version_id)


def _fail_stale_runs(project: Project) -> None:
    cutoff = timezone.now() - STALE_RUN_AFTER
    stale = TrainingRun.objects.filter(project=project, status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    stale.update(
        status=TrainingRun.Status.FAILED,
        error="The worker stopped reporting progress; the run was abandoned.",
        finished_at=timezone.now(),
    )


def training_run_request(*, project: Project, trigger: str) -> tuple[TrainingRun, bool]:
    """Queue a run for ``project`` unless one is already queued or running.

    Returns ``(run, created)``. The Celery task is sent after commit, so the worker
    always finds the row.
    """
    _fail_stale_runs(project)
    active = TrainingRun.objects.filter(project=project, status__in=TrainingRun.ACTIVE_STATUSES).first()
    if active is not None:
        return active, False
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                project=project,
                trigger=trigger,
                label_count=Label.objects.filter(item__project=project).count(),
            )
            transaction.on_commit(lambda: _enqueue_training(run.id))
    except IntegrityError:
        # Another trigger created the active run between our check and insert.
        active = TrainingRun.objects.filter(project=project, status__in=TrainingRun.ACTIVE_STATUSES).first()
        if active is None:
            raise
        return active, False
    return run, True


def training_run_request_if_due(*, project_id: int) -> TrainingRun | None:
    """Request a run when RETRAIN_EVERY_N_LABELS labels arrived since the last one."""
    every = settings.RETRAIN_EVERY_N_LABELS
    if every <= 0:
        return None
    project = Project.objects.filter(id=project_id).first()
    if project is None:
        return None
    last_count = TrainingRun.objects.filter(project=project).aggregate(last=Max("label_count"))["last"] or 0
    labels_now = Label.objects.filter(item__project=project).count()
    if labels_now - last_count < every:
        return None
    run, _ = training_run_request(project=project, trigger=TrainingRun.Trigger.LABEL_COUNT)
    return run


def training_run_start(*, run_id: int) -> TrainingRun | None:
    """Move a queued run to running. ``None`` if the run is gone or not queued (duplicate delivery)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(id=run_id).first()
        if run is None or run.status != TrainingRun.Status.QUEUED:
            return None
        now = timezone.now()
        run.status = TrainingRun.Status.RUNNING
        run.started_at = now
        run.heartbeat_at = now
        run.save(update_fields=["status", "started_at", "heartbeat_at"])
    return run


def training_run_record_snapshot(*, run_id: int, path: str, sha256: str, pairs: int, config: dict) -> None:
    TrainingRun.objects.filter(id=run_id).update(snapshot_path=path, snapshot_sha256=sha256, pairs=pairs, config=config)


def training_run_report_progress(*, run_id: int, progress: dict) -> None:
    TrainingRun.objects.filter(id=run_id, status=TrainingRun.Status.RUNNING).update(
        progress=progress, heartbeat_at=timezone.now()
    )


def training_run_fail(*, run_id: int, error: str) -> None:
    TrainingRun.objects.filter(id=run_id, status__in=TrainingRun.ACTIVE_STATUSES).update(
        status=TrainingRun.Status.FAILED, error=error[:5000], finished_at=timezone.now()
    )


def model_version_next_number(*, project: Project) -> int:
    return (ModelVersion.objects.filter(project=project).aggregate(top=Max("version"))["top"] or 0) + 1


def training_run_complete(
    *,
    run_id: int,
    version: int,
    checkpoint_path: str,
    metrics: dict,
    champion_metrics: dict,
    promote: bool,
    config: dict,
    seed: int,
    code_version: str,
) -> ModelVersion:
    """Record the run's model version and, if it passed the gate, make it the champion.

    Atomic: the run turns succeeded, the version appears and the champion changes
    together. Scoring is queued after commit for a promoted version.
    """
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().select_related("project").get(id=run_id)
        if run.status != TrainingRun.Status.RUNNING:
            raise ConflictError(f"Training run {run_id} is {run.status}, not running.")
        champion = ModelVersion.objects.select_for_update().filter(project=run.project, status=ModelVersion.Status.CHAMPION).first()
        now = timezone.now()
        if promote and champion is not None:
            champion.status = ModelVersion.Status.RETIRED
            champion.save(update_fields=["status"])
        model_version = ModelVersion.objects.create(
            project=run.project,
            version=version,
            training_run=run,
            parent=champion,
            status=ModelVersion.Status.CHAMPION if promote else ModelVersion.Status.REJECTED,
            checkpoint_path=checkpoint_path,
            metrics=metrics,
            champion_metrics=champion_metrics,
            config=config,
            data_sha256=run.snapshot_sha256,
            seed=seed,
            code_version=code_version,
            promoted_at=now if promote else None,
        )
        run.status = TrainingRun.Status.SUCCEEDED
        run.finished_at = now
        run.save(update_fields=["status", "finished_at"])
        if promote:
            transaction.on_commit(lambda: _enqueue_scoring(model_version.id))
    return model_version


def response_scores_store(*, version_id: int, scores: dict[int, float]) -> int:
    """Store one score per response for a version; re-running is a no-op (idempotent)."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().filter(id=version_id).first()
        if version is None:
            raise NotFoundError(f"Model version {version_id} no longer exists.")
        ResponseScore.objects.bulk_create(
            [ResponseScore(response_id=rid, model_version=version, score=score) for rid, score in scores.items()],
            ignore_conflicts=True,
            batch_size=1000,
        )
        version.scored_at = timezone.now()
        version.save(update_fields=["scored_at"])
    return len(scores)

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

from annotation.models import Label, Project, Response
from config.errors import ConflictError, DomainError, NotFoundError
from training.models import ModelVersion, ResponseScore, TrainingPolicy, TrainingRun

logger = logging.getLogger(__name__)


def stale_run_after() -> timedelta:
    """A running run whose worker has not sent a heartbeat for this long is presumed dead
    (killed worker, lost machine) and is marked failed so the project can train again.
    The pipeline sends a heartbeat every few seconds from a background thread."""
    return timedelta(seconds=settings.TRAINING_STALE_AFTER_SECONDS)


def _enqueue_training(run_id: int) -> None:
    from training.tasks import train_reward_model

    train_reward_model.delay(run_id)


def _enqueue_scoring(version_id: int) -> None:
    from training.tasks import rescore_responses

    rescore_responses.delay(version_id)


def training_runs_fail_stale(*, project: Project | None = None) -> int:
    """Mark running runs with a silent worker as failed. Returns how many. Idempotent."""
    cutoff = timezone.now() - stale_run_after()
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    if project is not None:
        stale = stale.filter(project=project)
    return stale.update(
        status=TrainingRun.Status.FAILED,
        error="The worker stopped sending heartbeats (killed or lost); the run was abandoned. "
        "The champion was not changed.",
        finished_at=timezone.now(),
    )


def training_policy_for(project: Project) -> TrainingPolicy:
    """The project's policy, or an unsaved one holding the defaults."""
    policy = TrainingPolicy.objects.filter(project=project).first()
    if policy is None:
        policy = TrainingPolicy(project=project, nightly_at=settings.RETRAIN_NIGHTLY_AT)
    return policy


POLICY_FIELDS = (
    "mode", "aggregation", "train_on_ties", "replay_ratio", "retrain_every_n_labels", "nightly_at",
    "promotion_tolerance",
)


def training_policy_update(*, project: Project, excluded_annotator_ids: list[int] | None = None, **changes) -> TrainingPolicy:
    """Change how ``project`` retrains. Unknown fields are a programming error; bad values a DomainError."""
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"Unknown training policy fields: {sorted(unknown)}")
    policy = training_policy_for(project)
    for name, value in changes.items():
        setattr(policy, name, value)
    if policy.mode not in TrainingPolicy.Mode.values:
        raise DomainError("mode must be 'full' or 'incremental'.", fields={"mode": ["unknown mode"]})
    if policy.aggregation not in TrainingPolicy.Aggregation.values:
        raise DomainError(
            "aggregation must be 'per_label', 'majority' or 'weighted'.", fields={"aggregation": ["unknown"]}
        )
    if not 0 <= policy.replay_ratio <= 100:
        raise DomainError("replay_ratio must be between 0 and 100.", fields={"replay_ratio": ["0 to 100"]})
    with transaction.atomic():
        if "nightly_at" in changes:
            policy.last_nightly_on = None  # a new time counts from today
        policy.save()
        if excluded_annotator_ids is not None:
            members = project.annotators.filter(id__in=excluded_annotator_ids)
            if members.count() != len(set(excluded_annotator_ids)):
                raise DomainError(
                    "excluded_annotator_ids must name annotators of this project.",
                    fields={"excluded_annotator_ids": ["unknown annotator"]},
                )
            policy.excluded_annotators.set(members)
    return policy


def training_run_request(*, project: Project, trigger: str) -> tuple[TrainingRun, bool]:
    """Queue a run for ``project`` unless one is already queued or running.

    Returns ``(run, created)``. The nightly schedule always asks for a full
    retrain; other triggers follow the project's policy. The Celery task is sent
    after commit, so the worker always finds the row.
    """
    training_runs_fail_stale(project=project)
    active = TrainingRun.objects.filter(project=project, status__in=TrainingRun.ACTIVE_STATUSES).first()
    if active is not None:
        return active, False
    try:
        with transaction.atomic():
            policy = training_policy_for(project)
            run = TrainingRun.objects.create(
                project=project,
                trigger=trigger,
                mode=TrainingPolicy.Mode.FULL if trigger == TrainingRun.Trigger.SCHEDULE else policy.mode,
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
    """Request a run when the project's N-labels threshold was crossed since the last run."""
    project = Project.objects.filter(id=project_id).first()
    if project is None:
        return None
    policy = training_policy_for(project)
    every = policy.retrain_every_n_labels if policy.retrain_every_n_labels is not None else settings.RETRAIN_EVERY_N_LABELS
    if every <= 0:
        return None
    last_count = TrainingRun.objects.filter(project=project).aggregate(last=Max("label_count"))["last"] or 0
    labels_now = Label.objects.filter(item__project=project).count()
    if labels_now - last_count < every:
        return None
    run, _ = training_run_request(project=project, trigger=TrainingRun.Trigger.LABEL_COUNT)
    return run


def training_runs_request_nightly(*, now=None) -> list[TrainingRun]:
    """Request the nightly full retrain of every project whose nightly time has passed today.

    Called every minute by celery beat; each project runs at most once per local day,
    so admins can edit ``nightly_at`` at any time without touching the beat schedule.
    """
    now = timezone.localtime(now or timezone.now())
    requested = []
    projects = Project.objects.filter(items__labels__isnull=False).distinct()
    for project in projects:
        policy = training_policy_for(project)
        if policy.nightly_at is None or now.time() < policy.nightly_at or policy.last_nightly_on == now.date():
            continue
        with transaction.atomic():
            policy.last_nightly_on = now.date()
            policy.save()
            run, _ = training_run_request(project=project, trigger=TrainingRun.Trigger.SCHEDULE)
        requested.append(run)
    return requested


def training_run_start(*, run_id: int, worker: str = "") -> TrainingRun | None:
    """Move a queued run to running. ``None`` if the run is gone or not queued (duplicate delivery)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(id=run_id).first()
        if run is None or run.status != TrainingRun.Status.QUEUED:
            return None
        now = timezone.now()
        run.status = TrainingRun.Status.RUNNING
        run.started_at = now
        run.heartbeat_at = now
        run.worker = worker[:255]
        run.save(update_fields=["status", "started_at", "heartbeat_at", "worker"])
    return run


def training_run_record_snapshot(
    *, run_id: int, path: str, sha256: str, pairs: int, max_label_id: int, config: dict
) -> None:
    TrainingRun.objects.filter(id=run_id).update(
        snapshot_path=path, snapshot_sha256=sha256, pairs=pairs, max_label_id=max_label_id, config=config
    )


def training_run_heartbeat(*, run_id: int) -> None:
    TrainingRun.objects.filter(id=run_id, status=TrainingRun.Status.RUNNING).update(heartbeat_at=timezone.now())


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


def passes_promotion_gate(*, challenger: dict, champion: dict | None, tolerance: float) -> bool:
    """Whether a challenger may replace the champion, both evaluated on the same held-out pairs.

    Promoted unless its accuracy is lower than the champion's by more than
    ``tolerance`` (accuracy points, 0..1). A first model is always promoted; a
    challenger with no held-out accuracy never replaces one that has it.
    """
    if not champion or champion.get("accuracy") is None:
        return True
    if challenger.get("accuracy") is None:
        return False
    return challenger["accuracy"] >= champion["accuracy"] - tolerance


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


def model_version_promote(*, version: ModelVersion) -> ModelVersion:
    """Make ``version`` the champion by hand (promote a rejected challenger, or roll back).

    The current champion retires. Scoring is queued after commit unless the version
    already scored every response (a rolled-back version keeps its old scores).
    """
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(id=version.id)
        if version.status == ModelVersion.Status.CHAMPION:
            raise ConflictError(f"v{version.version} is already the champion.")
        current = (
            ModelVersion.objects.select_for_update()
            .filter(project_id=version.project_id, status=ModelVersion.Status.CHAMPION)
            .first()
        )
        if current is not None:
            current.status = ModelVersion.Status.RETIRED
            current.save(update_fields=["status"])
        version.status = ModelVersion.Status.CHAMPION
        version.promoted_at = timezone.now()
        version.save(update_fields=["status", "promoted_at"])
        responses = Response.objects.filter(prompt__project_id=version.project_id).count()
        if version.scores.count() < responses:
            version.scored_at = None
            version.save(update_fields=["scored_at"])
            transaction.on_commit(lambda: _enqueue_scoring(version.id))
    return version


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

"""Writes for the training side: requesting and sending runs, advancing their status,
recording versions and scores.

Every trigger (label count and nightly schedule through ``training.reconciler``, the
UI button, the CLI) goes through ``training_run_request``, which coalesces: while a
project has a queued or running run, a new request returns that run instead of
starting another. The partial unique index ``training_run_one_active_per_project``
backs this up in the database. Messages to the workers are sent after commit and
may fail (broker down): the row records it and the reconciler sends again.
"""
import logging
import math

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import Label, Project, Response
from config.errors import ConflictError, DomainError, NotFoundError
from training import dispatch
from training.leaderboard import model_rewards_summary
from training.models import AnnotatorExclusionChange, ModelVersion, ResponseScore, TrainingPolicy, TrainingRun
from training.selectors import (
    automatic_retry_at,
    champion_for,
    label_trigger_threshold,
    labels_since_last_success,
    next_nightly_at,
    responses_missing_scores,
    stale_run_after,
    training_policy_for,
)

logger = logging.getLogger(__name__)


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


POLICY_FIELDS = (
    "mode", "aggregation", "train_on_ties", "replay_ratio", "retrain_every_n_labels", "nightly_at",
    "promotion_tolerance", "min_evaluation_pairs", "when_evaluation_insufficient", "priority_head",
)


def training_policy_update(
    *, project: Project, excluded_annotator_ids: list[int] | None = None, changed_by=None, **changes
) -> TrainingPolicy:
    """Change how ``project`` retrains. Unknown fields are a programming error; bad values a DomainError.

    Each annotator that ``excluded_annotator_ids`` leaves out or lets back in is recorded as an
    ``AnnotatorExclusionChange`` by ``changed_by``, as the Annotators card's toggle records it.
    """
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"Unknown training policy fields: {sorted(unknown)}")
    policy = training_policy_for(project)
    nightly_time_changed = "nightly_at" in changes and changes["nightly_at"] != policy.nightly_at
    priority_head_changed = "priority_head" in changes and changes["priority_head"] != policy.priority_head
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
    if policy.when_evaluation_insufficient not in TrainingPolicy.WhenEvaluationInsufficient.values:
        raise DomainError(
            "when_evaluation_insufficient must be 'keep' or 'promote_if_not_worse'.",
            fields={"when_evaluation_insufficient": ["unknown"]},
        )
    criteria = [criterion["key"] for criterion in project.criteria or ()]
    # Checked when set: a criterion removed from the project later leaves a stale value, which
    # orders nothing (training.priorities) and must not block saving the rest of the policy.
    if priority_head_changed and policy.priority_head and policy.priority_head not in criteria:
        raise DomainError(
            f"priority_head must be empty (the overall preference) or one of the project's criteria: "
            f"{', '.join(criteria) or 'it has none'}.",
            fields={"priority_head": ["not a criterion of this project"]},
        )
    with transaction.atomic():
        if nightly_time_changed:
            policy.nightly_anchor_at = timezone.now()  # a new time counts from now: its next occurrence
        policy.save()
        if excluded_annotator_ids is not None:
            members = project.annotators.filter(id__in=excluded_annotator_ids)
            if members.count() != len(set(excluded_annotator_ids)):
                raise DomainError(
                    "excluded_annotator_ids must name annotators of this project.",
                    fields={"excluded_annotator_ids": ["unknown annotator"]},
                )
            before = set(policy.excluded_annotators.values_list("id", flat=True))
            policy.excluded_annotators.set(members)
            after = {member.id for member in members}
            AnnotatorExclusionChange.objects.bulk_create(
                AnnotatorExclusionChange(project=project, annotator_id=annotator_id, action=action, changed_by=changed_by,
                                         reason="training policy form")
                for ids, action in ((after - before, AnnotatorExclusionChange.Action.EXCLUDED),
                                    (before - after, AnnotatorExclusionChange.Action.INCLUDED))
                for annotator_id in sorted(ids)
            )
        champion = champion_for(project) if priority_head_changed else None
        if champion is not None and champion.scored_at is not None:
            # The items' priorities come from the chosen head's scores: recomputed in the worker
            # (every item of the project), not in this request. A champion still scoring
            # refreshes them when it finishes; a lost message, at the next rescoring.
            transaction.on_commit(lambda: dispatch.send_priorities_refresh(champion.id))
    return policy


def training_run_request(*, project: Project, trigger: str) -> tuple[TrainingRun, bool]:
    """Queue a run for ``project`` unless one is already queued or running.

    Returns ``(run, created)``. The nightly schedule always asks for a full
    retrain; other triggers follow the project's policy. The message to the
    workers is sent after commit, so the worker always finds the row; if the
    broker is down the run stays queued with ``dispatch_error`` set and the
    reconciler sends it when the broker is back. Never raises for the broker.
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
            transaction.on_commit(lambda: training_run_dispatch(run_id=run.id))
    except IntegrityError:
        # Another trigger created the active run between our check and insert.
        active = TrainingRun.objects.filter(project=project, status__in=TrainingRun.ACTIVE_STATUSES).first()
        if active is None:
            raise
        return active, False
    if not transaction.get_connection().in_atomic_block:
        run.refresh_from_db()  # the dispatch outcome, for the caller's response
    return run, True


def training_run_dispatch(*, run_id: int) -> bool:
    """Send a queued run's message to the workers and record the outcome on the row.

    Returns whether the broker took it. A run that is no longer queued is left alone.
    """
    error = dispatch.send_training_run(run_id)
    fields = {"dispatch_attempts": F("dispatch_attempts") + 1, "dispatch_error": error}
    if not error:
        fields["dispatched_at"] = timezone.now()
    TrainingRun.objects.filter(id=run_id, status=TrainingRun.Status.QUEUED).update(**fields)
    return not error


def training_run_request_if_due(*, project: Project, now=None) -> TrainingRun | None:
    """Request a run when enough labels arrived since the last succeeded run's snapshot.

    Returns the new run, or ``None`` (not due, or a run is already queued or running).
    Labels that came in while a run trained count toward the next one. After a
    failed automatic run, waits (``automatic_retry_at``) before asking again.
    """
    now = now or timezone.now()
    every = label_trigger_threshold(training_policy_for(project))
    if every <= 0 or labels_since_last_success(project, at_most=every) < every:
        return None
    retry_at = automatic_retry_at(project)
    if retry_at is not None and now < retry_at:
        return None
    run, created = training_run_request(project=project, trigger=TrainingRun.Trigger.LABEL_COUNT)
    return run if created else None


def training_run_request_nightly_if_due(*, project: Project, now=None) -> TrainingRun | None:
    """Request the nightly full retrain when its time has come (see ``selectors.next_nightly_at``).

    Returns the new run, or ``None``. A run already queued or running counts as tonight's."""
    now = now or timezone.now()
    policy = training_policy_for(project)
    due_at = next_nightly_at(policy)
    if due_at is None or now < due_at:
        return None
    with transaction.atomic():
        policy.nightly_anchor_at = now  # the next one is due at the following occurrence
        policy.save()
        run, created = training_run_request(project=project, trigger=TrainingRun.Trigger.SCHEDULE)
    return run if created else None


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
    *, run_id: int, path: str, sha256: str, pairs: int, max_label_id: int, label_watermark: int, config: dict
) -> None:
    TrainingRun.objects.filter(id=run_id).update(
        snapshot_path=path,
        snapshot_sha256=sha256,
        pairs=pairs,
        max_label_id=max_label_id,
        label_watermark=label_watermark,
        config=config,
    )


def training_run_record_mode(*, run_id: int, mode: str) -> None:
    """The mode the run really trains in (an incremental run with no champion trains in full)."""
    TrainingRun.objects.filter(id=run_id).update(mode=mode)


def training_run_heartbeat(*, run_id: int) -> None:
    TrainingRun.objects.filter(id=run_id, status=TrainingRun.Status.RUNNING).update(heartbeat_at=timezone.now())


# The dashboard draws a run's loss curve from these points; a long run reports every few
# seconds for hours, so the curve is thinned to stay a small JSON value (training.dashboards).
LOSS_CURVE_MAX_POINTS = 500


def loss_curve_extend(curve: list, point: list, *, max_points: int = LOSS_CURVE_MAX_POINTS) -> list:
    """``curve`` with ``point`` ([step, loss]) added, never more than ``max_points`` points.

    Steps are cut into buckets of ``width`` steps and each bucket keeps its newest point; the
    width doubles whenever the run outgrows ``max_points`` buckets. So the curve stays evenly
    spread over the whole run (a short run keeps every point), its last point is always the
    newest report, and no state is kept beside the curve. A step not after the last one (a
    repeated report) is not added.
    """
    step = point[0]
    if curve and curve[-1][0] >= step:
        return curve
    width = 1
    while step // width >= max_points - 1:
        width *= 2
    kept: list = []
    for existing in [*curve, point]:
        if kept and kept[-1][0] // width == existing[0] // width:
            kept[-1] = existing
        else:
            kept.append(existing)
    return kept


def training_run_report_progress(*, run_id: int, progress: dict) -> None:
    """Record a running run's progress and add its loss to the run's loss curve.

    The row is locked while the curve is read and written back, so two reports cannot lose a
    point; only the run's own worker reports, so the lock is never waited on for long.
    """
    step, loss = progress.get("step"), progress.get("loss")
    point = [step, loss] if type(step) is int and type(loss) in (int, float) and math.isfinite(loss) else None
    with transaction.atomic():
        run = (
            TrainingRun.objects.select_for_update()
            .filter(id=run_id, status=TrainingRun.Status.RUNNING)
            .only("id", "loss_curve")
            .first()
        )
        if run is None:
            return
        fields = {"progress": progress, "heartbeat_at": timezone.now()}
        if point is not None:
            fields["loss_curve"] = loss_curve_extend(run.loss_curve or [], point)
        TrainingRun.objects.filter(id=run.id).update(**fields)


def training_run_fail(*, run_id: int, error: str) -> None:
    TrainingRun.objects.filter(id=run_id, status__in=TrainingRun.ACTIVE_STATUSES).update(
        status=TrainingRun.Status.FAILED, error=error[:5000], finished_at=timezone.now()
    )


def training_run_complete(
    *,
    run_id: int,
    version: int,
    checkpoint_path: str,
    metrics: dict,
    champion_metrics: dict,
    promote: bool,
    gate: dict | None = None,
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
            gate=gate or {},
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
            transaction.on_commit(lambda: model_version_dispatch_scoring(version_id=model_version.id))
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
            # A fresh start for the retries too: an admin asked for this version.
            version.scored_at = None
            version.scoring_attempts = 0
            version.scoring_error = ""
            version.save(update_fields=["scored_at", "scoring_attempts", "scoring_error"])
            transaction.on_commit(lambda: model_version_dispatch_scoring(version_id=version.id))
    return version


def model_version_dispatch_scoring(*, version_id: int) -> bool:
    """Send a version's rescoring to the workers; counts as one attempt whether or not it got through."""
    error = dispatch.send_rescoring(version_id)
    ModelVersion.objects.filter(id=version_id).update(
        scoring_dispatched_at=timezone.now(),
        scoring_attempts=F("scoring_attempts") + 1,
        scoring_error=error or F("scoring_error"),
    )
    return not error


def model_version_scoring_heartbeat(*, version_id: int) -> None:
    ModelVersion.objects.filter(id=version_id).update(scoring_heartbeat_at=timezone.now())


def response_scores_store(
    *, version_id: int, scores: dict[int, float], criterion_scores: dict[int, dict[str, float]] | None = None
) -> int:
    """Store one chunk of a version's scores; storing a score twice is a no-op (idempotent).

    ``criterion_scores``: per response, its per-criterion heads' rewards (a version with heads).

    Each chunk commits on its own, so a rescoring killed halfway resumes where it
    stopped; the chunk also counts as a heartbeat.
    """
    with transaction.atomic():
        if not ModelVersion.objects.filter(id=version_id).exists():
            raise NotFoundError(f"Model version {version_id} no longer exists.")
        ResponseScore.objects.bulk_create(
            [
                ResponseScore(response_id=rid, model_version_id=version_id, score=score,
                              criterion_scores=(criterion_scores or {}).get(rid, {}))
                for rid, score in scores.items()
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        ModelVersion.objects.filter(id=version_id).update(scoring_heartbeat_at=timezone.now())
    return len(scores)


def model_version_scoring_finish(*, version_id: int) -> bool:
    """Mark the version scored if every response of its project has its score. Returns whether it did."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().filter(id=version_id).first()
        if version is None:
            return False
        if responses_missing_scores(version).exists():
            return False
        version.scored_at = timezone.now()
        version.scoring_error = ""
        # The leaderboard reads this instead of every score; computed under the lock, so it
        # describes exactly the scores this scored_at stands for.
        version.reward_summary = model_rewards_summary(version)
        # Counted, not read off the project's response counter: an import committing now
        # would be in the counter and not yet scored.
        version.scored_responses = ResponseScore.objects.filter(model_version=version).count()
        version.scoring_attempts = 0  # a finished scoring spends no more tries; new responses get their own
        version.save(update_fields=["scored_at", "scoring_error", "reward_summary", "scored_responses", "scoring_attempts"])
    return True


def model_version_scoring_fail(*, version_id: int, error: str) -> None:
    """Record why rescoring failed; the reconciler sends it again (up to SCORING_MAX_ATTEMPTS)."""
    ModelVersion.objects.filter(id=version_id).update(scoring_error=error[:5000], scoring_heartbeat_at=None)

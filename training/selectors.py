"""Reads for the training side, scoped by the project the caller was already granted."""
import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import FloatField, Max, OuterRef, Q, QuerySet, Subquery, Value

from annotation.models import Label, Project, Response
from annotation.selectors import projects_for_user, require_admin
from config.errors import NotFoundError
from training.models import ModelVersion, ResponseScore, TrainingPolicy, TrainingRun
from training.schedule import next_occurrence


def champion_for(project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, status=ModelVersion.Status.CHAMPION).first()


def responses_with_scores(project: Project, version: ModelVersion | None) -> QuerySet:
    """Every response of ``project`` annotated with ``score`` from ``version`` (None if unscored). One query."""
    responses = Response.objects.filter(prompt__project=project).select_related("prompt").order_by("prompt_id", "id")
    if version is None:
        return responses.annotate(score=Value(None, output_field=FloatField()))
    return responses.annotate(
        score=Subquery(
            ResponseScore.objects.filter(response=OuterRef("pk"), model_version=version).values("score")[:1]
        )
    )


def model_versions_for(project: Project) -> QuerySet:
    return ModelVersion.objects.filter(project=project).order_by("-version")


def training_runs_for(project: Project) -> QuerySet:
    return TrainingRun.objects.filter(project=project).select_related("model_version").order_by("-id")


def model_version_get_for_admin(*, user, version_id: int) -> ModelVersion:
    """The version if ``user`` administers its project; NotFoundError otherwise.

    A missing id and another project's version get the same answer, so ids cannot be
    probed; an annotator of the version's own project is told that only admins may.
    """
    version = (
        ModelVersion.objects.select_related("project")
        .filter(id=version_id, project__in=projects_for_user(user))
        .first()
    )
    if version is None:
        raise NotFoundError("No such model version.")
    require_admin(user)
    return version


# --- Reads the services and the reconciler decide by ------------------------------


def training_policy_for(project: Project) -> TrainingPolicy:
    """The project's policy, or an unsaved one holding the defaults."""
    policy = TrainingPolicy.objects.filter(project=project).first()
    if policy is None:
        policy = TrainingPolicy(project=project, nightly_at=settings.RETRAIN_NIGHTLY_AT)
    return policy


def model_version_next_number(*, project: Project) -> int:
    return (ModelVersion.objects.filter(project=project).aggregate(top=Max("version"))["top"] or 0) + 1


def stale_run_after() -> timedelta:
    """A running run (or rescoring) whose worker has not sent a heartbeat for this long is
    presumed dead (killed worker, lost machine). Heartbeats come every few seconds from a
    background thread, so this is many missed beats, not one slow step."""
    return timedelta(seconds=settings.TRAINING_STALE_AFTER_SECONDS)


def label_trigger_threshold(policy: TrainingPolicy) -> int:
    """New labels that request a run; 0 means the label trigger is off."""
    if policy.retrain_every_n_labels is not None:
        return policy.retrain_every_n_labels
    return settings.RETRAIN_EVERY_N_LABELS


def labels_since_last_success(project: Project, *, at_most: int) -> int:
    """Labels after the newest succeeded run's watermark, counted up to ``at_most``.

    Labels that arrived while a run trained are after its watermark, so they count
    toward the next run. The LIMIT keeps the count cheap however large the project.
    """
    watermark = (
        TrainingRun.objects.filter(project=project, status=TrainingRun.Status.SUCCEEDED)
        .aggregate(top=Max("label_watermark"))["top"]
        or 0
    )
    return Label.objects.filter(item__project=project, id__gt=watermark).values("id")[:at_most].count()


def automatic_retry_at(project: Project):
    """When an automatic (label-count) run may next be requested after consecutive failures.

    ``None`` when the latest finished run did not fail. The wait doubles with each
    failure since the last success, up to six hours, so a run that cannot succeed
    (say, too few prompts) does not retrain every minute.
    """
    last_success = (
        TrainingRun.objects.filter(project=project, status=TrainingRun.Status.SUCCEEDED).aggregate(top=Max("id"))["top"]
        or 0
    )
    failures = TrainingRun.objects.filter(project=project, status=TrainingRun.Status.FAILED, id__gt=last_success)
    count = failures.count()
    if not count:
        return None
    latest = failures.order_by("-id").values_list("finished_at", flat=True).first()
    if latest is None:  # failed without an end time (written by hand): nothing to wait from
        return None
    wait = min(settings.TRAINING_RETRY_BACKOFF_SECONDS * 2 ** (count - 1), 6 * 3600)
    return latest + timedelta(seconds=wait)


def next_nightly_at(policy: TrainingPolicy, *, first_label_at=None) -> datetime.datetime | None:
    """When the project's next nightly run is due; ``None`` when off or before any label.

    Due at the first ``nightly_at`` after the last nightly request (or the last time
    an admin changed ``nightly_at``), or, for a project that never ran one, after its
    first label: a fresh project is not retrained minutes after its first labels just
    because today's nightly time has passed.
    """
    if policy.nightly_at is None:
        return None
    anchor = policy.nightly_anchor_at
    if anchor is None:
        if first_label_at is None:
            first_label_at = (
                Label.objects.filter(item__project_id=policy.project_id).order_by("id").values_list("created_at", flat=True).first()
            )
        anchor = first_label_at
    if anchor is None:
        return None
    return next_occurrence(policy.nightly_at, after=anchor, zone=ZoneInfo(settings.TIME_ZONE))


def newest_label_id(project: Project) -> int:
    """The project's newest label id (0 without labels): a snapshot's watermark."""
    return Label.objects.filter(item__project=project).aggregate(top=Max("id"))["top"] or 0


def model_version_for_worker(version_id: int) -> ModelVersion | None:
    """A version by id, unscoped: for tasks, which are handed ids the services already checked."""
    return ModelVersion.objects.filter(id=version_id).first()


def responses_missing_scores(version: ModelVersion) -> QuerySet:
    """The version's project's responses that have no score from it yet, with their prompts, by id."""
    return (
        Response.objects.filter(prompt__project_id=version.project_id)
        .exclude(scores__model_version=version)
        .select_related("prompt")
        .only("id", "text", "prompt__conversation")
        .order_by("id")
    )


def queued_runs_to_send(*, now) -> QuerySet:
    """Queued runs whose message was never sent, or sent long ago without a worker taking it."""
    resend_before = now - timedelta(seconds=settings.TRAINING_REDISPATCH_AFTER_SECONDS)
    return TrainingRun.objects.filter(status=TrainingRun.Status.QUEUED).filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=resend_before)
    )


def champions_to_rescore(*, now) -> QuerySet:
    """Champions still missing scores whose rescoring was never sent, or went silent.

    Silent means no send and no heartbeat for ``stale_run_after``: the worker died, the
    message was lost, or the task failed. Gives up after SCORING_MAX_ATTEMPTS sends.
    """
    quiet_since = now - stale_run_after()
    return ModelVersion.objects.filter(
        status=ModelVersion.Status.CHAMPION, scored_at__isnull=True, scoring_attempts__lt=settings.SCORING_MAX_ATTEMPTS
    ).filter(
        Q(scoring_dispatched_at__isnull=True)
        | (Q(scoring_dispatched_at__lt=quiet_since) & (Q(scoring_heartbeat_at__isnull=True) | Q(scoring_heartbeat_at__lt=quiet_since)))
    )

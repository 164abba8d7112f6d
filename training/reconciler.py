"""Training's bookkeeping, run by celery beat every TRAINING_RECONCILE_SECONDS.

Annotation never calls training: a label is only a row. This pass reads the rows
and brings the world in line with them, so any message, worker or tick that was
lost is made good by the next one:

1. running runs whose worker went silent are failed (the champion keeps serving);
2. queued runs whose message never reached the broker, or was lost, are sent again;
3. projects with enough labels since their last succeeded run get a run
   (labels that arrived during a run start the next one); this step also runs alone, every
   TRAINING_LABEL_TRIGGER_SECONDS, as ``request_label_runs``, so a label that makes a run due
   starts it within seconds rather than at this pass's next tick;
4. projects whose nightly time has come get their full retrain;
5. champions still missing scores whose rescoring failed or went silent are sent again;
6. champions of projects with responses imported since their scoring finished score the new
   ones (the same resumable task: it scores what is missing), within a tick of the import.

Each step is idempotent and safe to run from two beats at once: requests coalesce
in the database and a run starts only once.
"""
import logging
from dataclasses import dataclass, field

from django.utils import timezone

from annotation.models import Project
from training import selectors, services

logger = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    failed_stale: int = 0
    resent_runs: list[int] = field(default_factory=list)
    requested_runs: list[int] = field(default_factory=list)
    resent_scoring: list[int] = field(default_factory=list)
    new_responses_scoring: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "failed_stale": self.failed_stale,
            "resent_runs": self.resent_runs,
            "requested_runs": self.requested_runs,
            "resent_scoring": self.resent_scoring,
            "new_responses_scoring": self.new_responses_scoring,
        }


def reconcile_training(*, now=None) -> ReconcileReport:
    now = now or timezone.now()
    report = ReconcileReport(failed_stale=services.training_runs_fail_stale())
    for run_id in selectors.queued_runs_to_send(now=now).values_list("id", flat=True):
        services.training_run_dispatch(run_id=run_id)
        report.resent_runs.append(run_id)
    report.requested_runs = request_label_runs(now=now)
    for project in Project.objects.order_by("id"):
        run = services.training_run_request_nightly_if_due(project=project, now=now)
        if run is not None:
            report.requested_runs.append(run.id)
    for version_id in selectors.champions_to_rescore(now=now).values_list("id", flat=True):
        services.model_version_dispatch_scoring(version_id=version_id)
        report.resent_scoring.append(version_id)
    for version_id in selectors.champions_with_new_responses(now=now).values_list("id", flat=True):
        services.model_version_dispatch_scoring(version_id=version_id)
        report.new_responses_scoring.append(version_id)
    if any(report.as_dict().values()):
        logger.info("Training reconciled: %s", report.as_dict())
    return report


def request_label_runs(*, now=None) -> list[int]:
    """Request a run for every project with enough new labels (step 3); the new runs' ids.

    Beat runs this alone every TRAINING_LABEL_TRIGGER_SECONDS (a few seconds): it is what
    stands between an annotator's label and the incremental update it starts, and it reads a
    handful of indexed rows per project, where the whole pass also sweeps scores. A submit
    itself never asks: it would put training's queries and the broker on the hot path.
    """
    now = now or timezone.now()
    requested = []
    for project in Project.objects.order_by("id"):
        run = services.training_run_request_if_due(project=project, now=now)
        if run is not None:
            requested.append(run.id)
    if requested:
        logger.info("Label trigger requested runs %s", requested)
    return requested

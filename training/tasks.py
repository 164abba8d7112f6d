"""Celery tasks: thin, idempotent, given ids. The work is in ``training.pipeline``.

Queues (see CELERY_TASK_ROUTES): ``training`` for the GPU/CPU-heavy run,
``scoring`` for rescoring, ``default`` for the nightly fan-out.
"""
import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="training.tasks.train_reward_model", acks_late=True)
def train_reward_model(run_id: int) -> int | None:
    """Train, evaluate and record a run. A redelivered message finds the run no longer queued and returns."""
    from training.pipeline import execute_training_run

    version = execute_training_run(run_id)
    return version.id if version else None


@shared_task(name="training.tasks.rescore_responses", acks_late=True)
def rescore_responses(version_id: int) -> int:
    """Store the version's score for every response of its project (idempotent)."""
    from training.pipeline import rescore_project_responses

    return rescore_project_responses(version_id)


@shared_task(name="training.tasks.retrain_all_projects")
def retrain_all_projects() -> list[int]:
    """Nightly: request a run for every project that has labels (coalesces with active runs)."""
    from annotation.models import Project
    from training.models import TrainingRun
    from training.services import training_run_request

    run_ids = []
    for project in Project.objects.filter(items__labels__isnull=False).distinct():
        run, _ = training_run_request(project=project, trigger=TrainingRun.Trigger.SCHEDULE)
        run_ids.append(run.id)
    return run_ids

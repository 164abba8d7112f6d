"""Celery tasks: thin, idempotent, given ids. The work is in ``training.pipeline``.

Queues (see CELERY_TASK_ROUTES): ``training`` for the GPU/CPU-heavy run,
``scoring`` for rescoring, ``default`` for the beat-driven housekeeping.
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


@shared_task(name="training.tasks.retrain_due_projects")
def retrain_due_projects() -> list[int]:
    """Every minute (beat): request the nightly full retrain of projects whose time has come."""
    from training.services import training_runs_request_nightly

    return [run.id for run in training_runs_request_nightly()]


@shared_task(name="training.tasks.fail_stale_training_runs")
def fail_stale_training_runs() -> int:
    """Every minute (beat): fail runs whose worker stopped sending heartbeats (killed mid-training)."""
    from training.services import training_runs_fail_stale

    return training_runs_fail_stale()

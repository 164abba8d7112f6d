"""Celery tasks: thin, idempotent, given ids. The work is in ``training.pipeline``.

Queues (see CELERY_TASK_ROUTES): ``training`` for the GPU/CPU-heavy run,
``scoring`` for rescoring, ``default`` for the beat-driven reconciler. Tasks are
sent by name from ``training.dispatch``, so nothing imports this module but Celery.

A database that blinks (restart, failover, a dropped connection) is retried with
backoff; every task is safe to run twice.
"""
import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

TRANSIENT = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="training.tasks.train_reward_model", acks_late=True, **TRANSIENT)
def train_reward_model(run_id: int) -> int | None:
    """Train, evaluate and record a run. A redelivered message finds the run no longer queued and returns."""
    from training.pipeline import execute_training_run

    version = execute_training_run(run_id)
    return version.id if version else None


@shared_task(name="training.tasks.rescore_responses", acks_late=True, **TRANSIENT)
def rescore_responses(version_id: int) -> int:
    """Store the version's score for every response still missing one (resumable, idempotent)."""
    from training.pipeline import rescore_project_responses

    return rescore_project_responses(version_id)


@shared_task(name="training.tasks.refresh_item_priorities", acks_late=True, **TRANSIENT)
def refresh_item_priorities(version_id: int) -> int:
    """Recompute every item's priority from the champion's scores (after the priority head changed)."""
    from training.models import ModelVersion
    from training.priorities import item_priorities_refresh

    version = ModelVersion.objects.filter(id=version_id, status=ModelVersion.Status.CHAMPION).first()
    return item_priorities_refresh(version) if version is not None else 0


@shared_task(name="training.tasks.reconcile_training")
def reconcile_training() -> dict:
    """Every TRAINING_RECONCILE_SECONDS (beat): triggers, re-sends and sweeps (see training.reconciler)."""
    from training.reconciler import reconcile_training as reconcile

    return reconcile().as_dict()


@shared_task(name="training.tasks.request_label_runs")
def request_label_runs() -> list[int]:
    """Every TRAINING_LABEL_TRIGGER_SECONDS (beat): the label trigger alone (see training.reconciler)."""
    from training.reconciler import request_label_runs as request

    return request()

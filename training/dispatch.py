"""Sending work to the Celery workers, by task name.

A message is only a wake-up call: the database row (a queued ``TrainingRun``, a
champion ``ModelVersion`` without scores) is the source of truth, and the
reconciler sends again whatever a lost or unsent message left waiting. So a
send never raises: it reports whether the broker took the message. Sending by
name keeps this module (and the services that call it) free of the task
module, which imports the torch pipeline.
"""
import logging

from kombu.exceptions import OperationalError as BrokerUnavailable

from config.celery import app

logger = logging.getLogger(__name__)

TRAIN_TASK = "training.tasks.train_reward_model"
RESCORE_TASK = "training.tasks.rescore_responses"
PRIORITIES_TASK = "training.tasks.refresh_item_priorities"


def _send(task_name: str, argument: int) -> str:
    """Send one task; returns "" on success, else why it failed (for the row and the UI)."""
    try:
        # retry=False: a web request must not hang on a dead broker; the reconciler retries.
        app.send_task(task_name, args=[argument], retry=False)
    except (BrokerUnavailable, OSError) as exc:
        logger.warning("Could not send %s(%s) to the broker: %s", task_name, argument, exc)
        return f"The broker could not be reached ({exc}); sending again every minute."
    return ""


def send_training_run(run_id: int) -> str:
    return _send(TRAIN_TASK, run_id)


def send_rescoring(version_id: int) -> str:
    return _send(RESCORE_TASK, version_id)


def send_priorities_refresh(version_id: int) -> str:
    return _send(PRIORITIES_TASK, version_id)

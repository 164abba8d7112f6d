"""Celery tasks of the annotation app: thin and idempotent; the work is in ``annotation.tallies``."""
from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(
    name="annotation.tasks.check_label_tallies",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=3,
)
def check_label_tallies() -> dict:
    """Every LABEL_TALLY_CHECK_SECONDS (beat): rebuild tallies that lost labels to a cascade (safe to run twice)."""
    from annotation.tallies import label_tallies_check

    return label_tallies_check()


@shared_task(
    name="annotation.tasks.fold_label_tallies",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=3,
)
def fold_label_tallies() -> dict:
    """Every LABEL_TALLY_FOLD_SECONDS (beat): store newly settled labels in the tallies (safe to run twice)."""
    from annotation.tallies import label_tallies_fold

    return label_tallies_fold()

# Importing the Celery app here makes `shared_task` bind to it in every process
# (web, worker, beat) and lets `transaction.on_commit(task.delay)` find the broker.
from config.celery import app as celery_app

__all__ = ("celery_app",)

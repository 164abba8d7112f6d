"""The Celery application shared by web, worker and beat processes."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("rlhf")
# Every CELERY_* Django setting configures Celery; see config/settings.py.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""The Celery app of the project: its settings from Django's, its tasks discovered in the apps, its
logging Django's."""

import os
from logging.config import dictConfig

from celery import Celery, signals
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def use_django_logging(**kwargs):
    """Worker and beat log through settings.LOGGING (LOG_FORMAT=json, the job's context)
    instead of Celery's own format, so every process of the product logs alike."""
    dictConfig(settings.LOGGING)

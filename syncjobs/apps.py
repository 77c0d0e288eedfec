"""The syncjobs app's registration with Django ("Sync jobs")."""

from django.apps import AppConfig


class SyncJobsConfig(AppConfig):
    name = "syncjobs"
    verbose_name = "Sync jobs"

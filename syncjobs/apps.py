from django.apps import AppConfig


class SyncJobsConfig(AppConfig):
    name = "syncjobs"
    verbose_name = "Sync jobs"

"""The records app's registration with Django ("Platform records")."""

from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "records"
    verbose_name = "Platform records"

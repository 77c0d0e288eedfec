"""The connectors app's registration with Django."""

from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "connectors"

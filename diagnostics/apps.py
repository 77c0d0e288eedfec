"""The diagnostics app's registration with Django."""

from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    name = "diagnostics"

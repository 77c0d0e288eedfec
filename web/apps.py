"""The shared web app's registration with Django: template tags and pagination every app uses."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "web"
    verbose_name = "Dashboard pages (shared)"

"""The push app's registration with Django ("Push from WordPress")."""

from django.apps import AppConfig


class PushConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "push"
    verbose_name = "Push from WordPress"

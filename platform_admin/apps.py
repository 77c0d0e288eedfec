"""The platform admin app's registration with Django."""

from django.apps import AppConfig


class PlatformAdminConfig(AppConfig):
    name = "platform_admin"

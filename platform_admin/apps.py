from django.apps import AppConfig


class PlatformAdminConfig(AppConfig):
    name = "platform_admin"

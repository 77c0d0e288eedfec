"""The accounts app's registration with Django ("Users and organisations")."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and organisations"

"""URLs of an organisation's Notifications page and its actions."""

from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.notification_settings, name="settings"),
    path("mute/", views.toggle_mute, name="mute"),
    path("webhooks/", views.webhook_add, name="webhook_add"),
    path("webhooks/<int:webhook>/delete/", views.webhook_delete, name="webhook_delete"),
]

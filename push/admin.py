"""The Django admin page of push channels (secrets read-only)."""

from django.contrib import admin

from push.models import PushChannel


@admin.register(PushChannel)
class PushChannelAdmin(admin.ModelAdmin):
    list_display = ("connector", "enabled", "subscribed_url", "last_received_at")
    readonly_fields = ("secret_encrypted", "last_timestamp", "window_started_at", "window_count")

"""Django admin pages where platform staff edit records (each save stamps the platform's
modification time)."""

from django.contrib import admin
from django.db import models
from django.utils import timezone

from records.models import RECORD_MODELS


class PlatformRecordAdmin(admin.ModelAdmin):
    """Platform staff edit records here; each save stamps platform_modified_at, which is what
    the sync engine compares with WordPress's modified time to detect a CONFLICT."""

    list_filter = ["organisation", "connector", "archived_at"]
    # Django 6 makes https the default scheme of a URL typed without one; say so now.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    search_fields = ["external_id"]
    readonly_fields = [
        "id",
        "organisation",
        "connector",
        "external_id",
        "content_hash",
        "source_modified_at",
        "last_synced_at",
        "platform_modified_at",
        "push_refused_at",
        "archived_at",
        "created_at",
        "updated_at",
    ]
    list_select_related = ["organisation", "connector"]

    def get_list_display(self, request):
        return [
            "__str__",
            "organisation",
            "connector",
            "external_id",
            "last_synced_at",
            "archived_at",
        ]

    def has_add_permission(self, request):
        return False  # records come from a connector; they are edited, not invented, here

    def save_model(self, request, obj, form, change):
        obj.platform_modified_at = timezone.now()
        super().save_model(request, obj, form, change)


for model in RECORD_MODELS.values():
    admin.site.register(model, PlatformRecordAdmin)

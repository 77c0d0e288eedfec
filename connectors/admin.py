from django.contrib import admin
from django.db import models

from connectors.models import Connector


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "status", "frequency", "last_sync_at", "next_sync_at"]
    list_filter = ["status", "kind", "frequency"]
    search_fields = ["name", "site_url", "organisation__name"]
    list_select_related = ["organisation"]
    # The key is write-only: the admin never shows the ciphertext or the plaintext.
    exclude = ["api_key_encrypted"]
    readonly_fields = ["cursors", "created_at", "updated_at"]
    # Django 6 makes https the default scheme of a URL typed without one; say so now.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

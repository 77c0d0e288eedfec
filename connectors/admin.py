"""The Django admin page of connectors; edits made there are audited like the dashboard's."""

from django import forms
from django.contrib import admin
from django.db import models, transaction

from audit.models import AuditEvent
from audit.services import diff, record, snapshot
from connectors.forms import normalise_site_url
from connectors.models import Connector
from connectors.services import CONFIGURATION_FIELDS


class ConnectorAdminForm(forms.ModelForm):
    """The admin's form checks the site URL as the dashboard's does: Django's URL validator
    lets ``localhost``, ``127.0.0.1``, ``[fec0::1]`` and ``xn--a.example`` through, which the
    sync would only refuse at fetch time."""

    def clean_site_url(self):
        return normalise_site_url(self.cleaned_data.get("site_url"))


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    form = ConnectorAdminForm
    list_display = ["name", "organisation", "status", "frequency", "last_sync_at", "next_sync_at"]
    list_filter = ["status", "kind", "frequency"]
    search_fields = ["name", "site_url", "organisation__name"]
    list_select_related = ["organisation"]
    # The key is write-only: the admin never shows the ciphertext or the plaintext.
    exclude = ["api_key_encrypted"]
    readonly_fields = ["cursors", "created_at", "updated_at"]
    # Django 6 makes https the default scheme of a URL typed without one; say so now.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    # Platform staff editing here must leave the same audit trail as the dashboard: the
    # organisation's admins read the Audit Log to learn who changed their connector.
    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            if not change:
                super().save_model(request, obj, form, change)
                created = snapshot(obj, fields=CONFIGURATION_FIELDS)
                record(obj, AuditEvent.Action.CREATED, actor=request.user, changes=created)
                return
            # "Before" is read under a row lock so a concurrent sync or save cannot slip in
            # between the snapshot and the write and make the diff lie.
            before = snapshot(Connector.objects.select_for_update().get(pk=obj.pk))
            super().save_model(request, obj, form, change)
            changes = diff(before, snapshot(obj))
            if changes:
                record(obj, AuditEvent.Action.UPDATED, actor=request.user, changes=changes)

    def delete_model(self, request, obj):
        with transaction.atomic():
            self._record_deleted(request, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for connector in queryset:
                self._record_deleted(request, connector)
            super().delete_queryset(request, queryset)

    @staticmethod
    def _record_deleted(request, connector):
        changes = {"name": connector.name, "site_url": connector.site_url, "via": "Django admin"}
        record(connector, AuditEvent.Action.DELETED, actor=request.user, changes=changes)

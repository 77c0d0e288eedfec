"""The Django admin's read-only view of connection tests."""

from django.contrib import admin

from diagnostics.models import ConnectionTest


@admin.register(ConnectionTest)
class ConnectionTestAdmin(admin.ModelAdmin):
    """Read-only: results are written by the worker, never edited by hand."""

    list_display = ["connector", "status", "requested_by", "created_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["connector__name", "connector__organisation__name"]
    list_select_related = ["connector", "requested_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

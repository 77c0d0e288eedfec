"""Django admin pages of sync jobs and their per-record log."""

from django.contrib import admin

from syncjobs.models import SyncJob, SyncLogEntry


@admin.register(SyncJob)
class SyncJobAdmin(admin.ModelAdmin):
    list_display = ["id", "connector", "kind", "trigger", "status", "created_at", "finished_at"]
    list_filter = ["status", "kind", "trigger"]
    list_select_related = ["connector"]
    raw_id_fields = ["connector", "triggered_by"]


@admin.register(SyncLogEntry)
class SyncLogEntryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "job",
        "entity_type",
        "external_id",
        "operation",
        "status",
        "processed_at",
    ]
    list_filter = ["status", "operation", "entity_type"]
    raw_id_fields = ["job", "connector"]
    show_full_result_count = False  # no COUNT(*) over millions of log rows

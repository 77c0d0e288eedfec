"""URLs of an organisation's connector pages and their POST actions."""

from django.urls import path

from connectors import views
from syncjobs import repair_views

app_name = "connectors"

urlpatterns = [
    path("", views.connector_list, name="list"),
    path("new/", views.connector_create, name="create"),
    path("audit/", views.organisation_audit, name="organisation_audit"),
    path("activity/", views.organisation_activity, name="organisation_activity"),
    path("<int:connector>/", views.connector_detail, name="detail"),
    path("<int:connector>/status/", views.connector_status, name="status"),
    path("<int:connector>/history/", views.connector_history, name="history"),
    path("<int:connector>/activity/", views.connector_activity, name="activity"),
    path("<int:connector>/audit/", views.connector_audit, name="audit"),
    path("<int:connector>/settings/", views.connector_settings, name="settings"),
    path("<int:connector>/sync/", views.connector_sync, name="sync"),
    path("<int:connector>/pause/", views.connector_pause, name="pause"),
    path("<int:connector>/resume/", views.connector_resume, name="resume"),
    path("<int:connector>/delete/", views.connector_delete, name="delete"),
    path("<int:connector>/preview/", repair_views.preview, name="preview"),
    path("<int:connector>/resync-type/", repair_views.resync_type, name="resync_type"),
    path("<int:connector>/sync-record/", repair_views.sync_record, name="sync_record"),
    path("<int:connector>/conflicts/", repair_views.conflict_inbox, name="conflicts"),
    path("<int:connector>/held-deletions/", repair_views.held_deletions, name="held_deletions"),
]

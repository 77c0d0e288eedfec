"""URLs of a job's page, its live status, its log export and its actions."""

from django.urls import path

from syncjobs import repair_views, views

app_name = "syncjobs"

urlpatterns = [
    path("<int:job>/", views.job_detail, name="detail"),
    path("<int:job>/status/", views.job_status, name="status"),
    path("<int:job>/log.csv", views.job_log_csv, name="log_csv"),
    path("<int:job>/cancel/", views.job_cancel, name="cancel"),
    path("<int:job>/retry-failed/", repair_views.retry_failed, name="retry_failed"),
]

"""The project's URL map: which app serves which path."""

from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from syncjobs.metrics import metrics_view

urlpatterns = [
    path("", account_views.home, name="home"),
    path("healthz", account_views.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("o/<slug:org>/connectors/", include("connectors.urls")),
    path("o/<slug:org>/connectors/<int:connector>/jobs/", include("syncjobs.urls")),
    path("o/<slug:org>/connectors/<int:connector>/diagnostics/", include("diagnostics.urls")),
    path("o/<slug:org>/records/", include("records.urls")),
    path("o/<slug:org>/notifications/", include("notifications.urls")),
    path("platform/", include("platform_admin.urls")),
    path("push/", include("push.urls")),
]

"""URLs of a connector's connection test and mapping diagnostics pages."""

from django.urls import path

from diagnostics import views

app_name = "diagnostics"

# Mounted at /o/<org>/connectors/<int:connector>/diagnostics/ (config/urls.py).
urlpatterns = [
    path("connection-test/", views.connection_test, name="connection_test"),
    path("connection-test/run/", views.run_connection_test, name="run_connection_test"),
    path("mapping/", views.mapping, name="mapping"),
]

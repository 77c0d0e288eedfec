"""URLs of the Platform → pages."""

from django.urls import path

from platform_admin import views

app_name = "platform_admin"

urlpatterns = [
    path("connectors/", views.connectors, name="connectors"),
]

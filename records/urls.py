"""URL of a platform record's page."""

from django.urls import path

from records import views

app_name = "records"

urlpatterns = [
    path("<slug:entity_type>/<uuid:pk>/", views.record_detail, name="detail"),
]

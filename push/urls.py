"""URL of the endpoint WordPress pushes to."""

from django.urls import path

from push import views

app_name = "push"

urlpatterns = [
    path("wordpress/<int:connector>/", views.receive_push, name="receive"),
]

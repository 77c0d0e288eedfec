from django.urls import path

from connectors import views

app_name = "connectors"

urlpatterns = [
    path("", views.connector_list, name="list"),
    path("<int:connector>/", views.connector_detail, name="detail"),
]

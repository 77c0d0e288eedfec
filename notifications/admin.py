"""Django admin pages of deliveries, connector health states and webhook endpoints."""

from django.contrib import admin

from notifications.models import ConnectorHealth, Delivery, WebhookEndpoint


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organisation", "connector_name", "event", "channel", "recipient"]
    list_filter = ["status", "channel", "event"]
    readonly_fields = [f.name for f in Delivery._meta.fields]


@admin.register(ConnectorHealth)
class ConnectorHealthAdmin(admin.ModelAdmin):
    list_display = ["connector", "failing_since", "consecutive_failures", "failure_cause"]

    def has_add_permission(self, request):
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    # Added on the Notifications page, which shows the secret once; here only listed.
    list_display = ["url", "organisation", "created_at"]
    exclude = ["secret_encrypted"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

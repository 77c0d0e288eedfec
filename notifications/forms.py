"""The Notifications page's forms: routing (event × channel), digest and auto-pause, and a
webhook URL (checked by the outbound guard before it is stored)."""

from django import forms

from connectors.wordpress.errors import WordPressError
from notifications.models import ROUTABLE_EVENTS, Channel, WebhookEndpoint
from notifications.sending import check_webhook_url


def route_name(event, channel) -> str:
    return f"{event}__{channel}"


class PreferencesForm(forms.Form):
    daily_digest = forms.BooleanField(
        required=False,
        label="Send emails as one daily digest",
        help_text="Webhooks are still sent at once.",
    )
    auto_pause_after_failures = forms.IntegerField(
        min_value=0,
        max_value=1000,
        label="Pause a connector automatically after this many failed syncs in a row",
        help_text="0 never pauses. Resume clears the pause and the count.",
    )
    auto_pause_after_hours = forms.IntegerField(
        min_value=0,
        max_value=24 * 90,
        label="…and only once it has been failing for at least (hours)",
    )

    failed_records_min = forms.IntegerField(
        min_value=1,
        max_value=1_000_000,
        label="Notify a sync that completed with at least this many failed records",
    )
    failed_records_percent = forms.IntegerField(
        min_value=0,
        max_value=100,
        label="…and more than this percentage of the records it processed",
        help_text="A few chronically broken posts on a large site stay below it.",
    )

    def __init__(self, *args, routes: dict, **kwargs):
        super().__init__(*args, **kwargs)
        for event in ROUTABLE_EVENTS:
            for channel in Channel:
                name = route_name(event, channel)
                self.fields[name] = forms.BooleanField(
                    required=False,
                    initial=routes.get((event.value, channel.value), True),
                    label=f"{event.label} by {channel.label.lower()}",
                )

    def rows(self):
        """(event label, [bound field per channel]) for the routing table."""
        return [
            (event.label, [self[route_name(event, channel)] for channel in Channel])
            for event in ROUTABLE_EVENTS
        ]


class WebhookForm(forms.Form):
    url = forms.URLField(
        max_length=500,
        label="Webhook URL",
        help_text="A Slack incoming webhook works as is (the JSON has a “text” field).",
        assume_scheme="https",
    )

    def __init__(self, *args, organisation, **kwargs):
        super().__init__(*args, **kwargs)
        self.organisation = organisation

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url.startswith(("http://", "https://")):
            raise forms.ValidationError("Only http:// and https:// URLs are allowed.")
        try:
            check_webhook_url(url)
        except WordPressError as exc:
            raise forms.ValidationError(str(exc).replace("site URL", "webhook URL")) from None
        if WebhookEndpoint.objects.filter(organisation=self.organisation, url=url).exists():
            raise forms.ValidationError("This webhook is already registered.")
        return url

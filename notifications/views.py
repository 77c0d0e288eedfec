"""The organisation's Notifications page: what goes where, each admin's own email mute,
webhooks, and the record of every notification sent or failed. Organisation admins (and
platform admins) only, through accounts.tenancy: another organisation's page is a 404.
Each form posts with htmx and gets its own section back; without htmx it redirects."""

from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.tenancy import get_organisation_for, is_member, org_context
from notifications.forms import PreferencesForm, WebhookForm, route_name
from notifications.models import (
    ROUTABLE_EVENTS,
    Channel,
    Delivery,
    EmailMute,
    OrganisationSettings,
    Preference,
    WebhookEndpoint,
)

DELIVERIES_SHOWN = 50


def _routes(organisation) -> dict:
    return {
        (p.event, p.channel): p.enabled
        for p in Preference.objects.filter(organisation=organisation)
    }


def _preferences_form(organisation, data=None) -> PreferencesForm:
    current = OrganisationSettings.for_organisation(organisation.pk)
    return PreferencesForm(
        data,
        routes=_routes(organisation),
        initial={
            "daily_digest": current.daily_digest,
            "auto_pause_after_failures": current.auto_pause_after_failures,
            "auto_pause_after_hours": current.auto_pause_after_hours,
            "failed_records_min": current.failed_records_min,
            "failed_records_percent": current.failed_records_percent,
        },
    )


def _context(request, organisation, **overrides) -> dict:
    context = {
        **org_context(request, organisation),
        "tab": "notifications",
        "form": _preferences_form(organisation),
        "webhook_form": WebhookForm(organisation=organisation),
        "webhooks": WebhookEndpoint.objects.filter(organisation=organisation),
        "deliveries": Delivery.objects.filter(organisation=organisation)
        .select_related("job", "connector")
        .order_by("-created_at", "-id")[:DELIVERIES_SHOWN],
        "is_member": is_member(request.user, organisation),
        "muted": EmailMute.objects.filter(user=request.user, organisation=organisation).exists(),
        "channels": list(Channel),
    }
    context.update(overrides)
    return context


def _section(request, organisation, section, **overrides):
    """An htmx form's own section, or (no htmx) back to the page."""
    if request.htmx:
        return render(
            request,
            f"notifications/settings.html#{section}",
            _context(request, organisation, **overrides),
        )
    return redirect(reverse("notifications:settings", args=[organisation.slug]))


@require_http_methods(["GET", "POST"])
def notification_settings(request, org):
    organisation = get_organisation_for(request.user, org)
    if request.method == "POST":
        form = _preferences_form(organisation, request.POST)
        if not form.is_valid():
            context = _context(request, organisation, form=form)
            template = "notifications/settings.html" + ("#preferences" if request.htmx else "")
            return render(request, template, context, status=200 if request.htmx else 400)
        with transaction.atomic():
            OrganisationSettings.objects.update_or_create(
                organisation=organisation,
                defaults={
                    "daily_digest": form.cleaned_data["daily_digest"],
                    "auto_pause_after_failures": form.cleaned_data["auto_pause_after_failures"],
                    "auto_pause_after_hours": form.cleaned_data["auto_pause_after_hours"],
                    "failed_records_min": form.cleaned_data["failed_records_min"],
                    "failed_records_percent": form.cleaned_data["failed_records_percent"],
                },
            )
            for event in ROUTABLE_EVENTS:
                for channel in Channel:
                    Preference.objects.update_or_create(
                        organisation=organisation,
                        event=event,
                        channel=channel,
                        defaults={"enabled": form.cleaned_data[route_name(event, channel)]},
                    )
        if not request.htmx:
            messages.success(request, "Notification settings saved.")
        return _section(request, organisation, "preferences", saved=True)
    return render(request, "notifications/settings.html", _context(request, organisation))


@require_POST
def toggle_mute(request, org):
    organisation = get_organisation_for(request.user, org)
    if request.POST.get("mute") == "1":
        EmailMute.objects.get_or_create(user=request.user, organisation=organisation)
    else:
        EmailMute.objects.filter(user=request.user, organisation=organisation).delete()
    return _section(request, organisation, "my-email")


@require_POST
def webhook_add(request, org):
    organisation = get_organisation_for(request.user, org)
    form = WebhookForm(request.POST, organisation=organisation)
    if not form.is_valid():
        if request.htmx:
            return _section(request, organisation, "webhooks", webhook_form=form)
        context = _context(request, organisation, webhook_form=form)
        return render(request, "notifications/settings.html", context, status=400)
    endpoint = WebhookEndpoint(organisation=organisation, url=form.cleaned_data["url"])
    secret = WebhookEndpoint.new_secret()
    endpoint.set_secret(secret)
    endpoint.save()
    # The secret is shown once, now: the receiver needs it to check signatures, and a
    # page that shows it later would show it to anyone who opens the page later.
    if not request.htmx:
        messages.success(request, f"Webhook added. Its signing secret (shown once): {secret}")
    return _section(request, organisation, "webhooks", new_secret=secret, new_webhook=endpoint)


@require_POST
def webhook_delete(request, org, webhook):
    organisation = get_organisation_for(request.user, org)
    endpoint = get_object_or_404(WebhookEndpoint, organisation=organisation, pk=webhook)
    endpoint.delete()
    return _section(request, organisation, "webhooks")

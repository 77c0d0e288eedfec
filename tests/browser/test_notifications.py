"""The Notifications page and the status wording, clicked through in headless Chromium."""

import re

from django.utils import timezone
from playwright.sync_api import expect

from connectors.models import Connector
from notifications.models import EmailMute, OrganisationSettings, Preference, WebhookEndpoint
from syncjobs.models import SyncJob
from tests.dashboard.conftest import make_job

from .conftest import login, screenshot


def test_an_admin_sets_up_notifications_without_reloading_the_page(
    browser_page, alice, org_a, settings
):
    page = browser_page
    login(page, alice)
    page.get_by_role("link", name="Notifications").click()
    expect(page.get_by_role("heading", name="Notifications", exact=True)).to_be_visible()
    page.evaluate("window.notReloaded = true")  # gone if a form reloads the page

    page.get_by_role("button", name="Mute my email").click()
    expect(page.locator("#my-email")).to_contain_text("Your notification email is muted")
    assert EmailMute.objects.filter(user=alice, organisation=org_a).exists()
    page.get_by_role("button", name="Unmute my email").click()
    expect(page.locator("#my-email")).to_contain_text("alice@acme.example")
    assert not EmailMute.objects.exists()

    page.get_by_label("Connector entered ERROR by email").uncheck()
    page.get_by_label("Send emails as one daily digest").check()
    page.get_by_label("Pause a connector automatically after this many failed syncs").fill("5")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#preferences .badge")).to_have_text("Saved")
    assert Preference.objects.get(event="error", channel="email").enabled is False
    org_settings = OrganisationSettings.objects.get(organisation=org_a)
    assert (org_settings.daily_digest, org_settings.auto_pause_after_failures) == (True, 5)

    page.get_by_label("Pause a connector automatically after this many failed syncs").fill("-1")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#preferences .field-error")).to_contain_text("greater than or equal to 0")

    # The suite allows loopback receivers (as the demo does); production refuses them.
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    page.get_by_label("Webhook URL").fill("http://127.0.0.1:9/acme")
    page.get_by_role("button", name="Add webhook").click()
    secret = page.locator("#webhooks code.secret")
    expect(secret).to_be_visible()
    assert secret.inner_text() == WebhookEndpoint.objects.get().secret
    screenshot(page, "notifications")

    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    page.get_by_label("Webhook URL").fill("http://10.1.2.3/internal")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#webhooks .field-error")).to_contain_text("private network address")
    assert WebhookEndpoint.objects.count() == 1

    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#webhooks").get_by_role("button", name="Delete").click()
    expect(page.locator("#webhooks")).to_contain_text("No webhook yet.")
    assert page.evaluate("window.notReloaded") is True


def test_status_wording_on_the_overview_and_the_list(browser_page, alice, connector_a):
    make_job(
        connector_a,
        stats={"article": {"total": 40, "processed": 40, "created": 37, "failed": 3}},
    )
    Connector.objects.filter(pk=connector_a.pk).update(
        status=Connector.Status.ERROR,
        status_message="Last sync failed: the sync key was refused.",
    )
    page = browser_page
    login(page, alice)
    row = page.locator("tbody tr").first
    expect(row.locator("td[data-label='Last attempt:']")).to_contain_text(
        "Completed with 3 failures"
    )
    expect(row.locator("td[data-label='Last success:']")).to_contain_text("ago")

    page.goto(connector_a.get_absolute_url())
    card = page.locator("#status-card")
    expect(card.locator("dt", has_text="Last attempt")).to_be_visible()
    expect(card).to_contain_text("Completed with 3 failures")
    expect(card.locator("dt", has_text="Last successful sync")).to_be_visible()
    expect(page.locator("#statistics")).to_contain_text("92.5%")
    expect(page.locator("#statistics")).to_contain_text("Records imported without error")
    expect(card.locator(".form-error")).to_contain_text("the sync key was refused")

    # A new sync starts while the connector is in ERROR: the polled card says it is retrying.
    SyncJob.objects.create(
        connector=connector_a,
        kind=SyncJob.Kind.INCREMENTAL,
        status=SyncJob.Status.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    page.reload()
    expect(page.locator("#status-card .retrying")).to_contain_text(
        re.compile(r"Retrying: a new sync is under way")
    )
    expect(page.locator("#status-card .form-error")).to_have_count(0)
    screenshot(page, "overview-retrying")


def test_platform_table_wording_last_success_and_retrying(browser_page, root, connector_a):
    from datetime import timedelta

    day_ago = timezone.now() - timedelta(days=1)
    make_job(connector_a, created_at=day_ago, finished_at=day_ago)
    make_job(connector_a, status=SyncJob.Status.FAILED, error="The sync key was refused.")
    Connector.objects.filter(pk=connector_a.pk).update(
        status=Connector.Status.ERROR,
        status_message="Last sync failed: the sync key was refused.",
    )
    page = browser_page
    login(page, root)
    page.goto("/platform/connectors/")
    table = page.locator("table.table-platform")
    expect(table.locator("thead")).to_contain_text("Last attempt")
    cell = table.locator("tbody tr").first.locator("td[data-label='Last attempt:']")
    expect(cell).to_contain_text("Failed")
    expect(cell.locator(".pf-last-success")).to_have_text(re.compile(r"Last success: 1\sday ago"))

    make_job(connector_a, status=SyncJob.Status.RUNNING, finished_at=None)
    page.reload()
    expect(table.locator("tbody tr").first.locator(".pf-status")).to_contain_text(
        "Retrying: a new sync is under way. Last sync failed: the sync key was refused."
    )
    screenshot(page, "platform-retrying")

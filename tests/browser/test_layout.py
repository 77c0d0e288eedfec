"""Every main page at laptop (1280 px) and phone (390 px) widths, filled with the data a real
sync leaves behind: nothing may stick out of its card or make the page scroll sideways, and a
wide table scrolls inside its own card on a phone. Each page is saved as a screenshot in
artifacts/screenshots/ (layout-<width>-<page>.png) for a person to look at."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from connectors import services as connector_services
from diagnostics import services as diagnostics_services
from diagnostics.models import ConnectionTest
from records.models import RECORD_MODELS, EntityType
from syncjobs import services as sync_services
from syncjobs.models import SyncJob, SyncLogEntry
from tests.conftest import make_connector
from tests.dashboard.conftest import make_job
from wpsim import SimulatedSite, serve

from .conftest import login, screenshot

KEY = "layout-test-sync-key-0123456789abcdefghij"
WIDTHS = {"laptop": (1280, 860), "phone": (390, 844)}

# Run in the page: everything that overflows, described for the assertion message.
OVERFLOW_JS = (Path(__file__).parent / "overflow.js").read_text()
# And what a screen reader would miss: unlabelled controls, images without alt, headings.
A11Y_JS = (Path(__file__).parent / "a11y.js").read_text()
# And text that does not meet WCAG AA contrast on its background.
CONTRAST_JS = (Path(__file__).parent / "contrast.js").read_text()
# The focused element must show it: an outline or the focus ring (box-shadow).
FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0)
    || style.boxShadow !== 'none';
  const text = (el.textContent || el.name || '').trim().slice(0, 30);
  return {tag: el.tagName.toLowerCase(), text, ring};
}"""


@pytest.fixture
def eager_tasks():
    """Celery tasks run in-process (the real task code), so the seed is what a worker leaves."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def simulator():
    site = SimulatedSite(records=120, seed=11, key=KEY)
    with serve(site, host="127.0.0.1", port=0) as server:
        yield site, server


def seed(org_a, org_b, alice, server):
    """A connector with every entity type after a real full sync, a failed sync, a passed
    connection test, settings edits, a pause and a resume; and another organisation's."""
    connector = connector_services.create_connector(
        org_a,
        user=alice,
        name="Acme Association website",
        site_url=server.url,
        api_key=KEY,
        entity_types=list(EntityType.values),
        frequency="1h",
    )
    connector_services.update_connector(
        connector, user=alice, values={"name": "Acme Association site", "frequency": "15m"}
    )
    connector_services.pause_connector(connector, user=alice)
    connector_services.resume_connector(connector, user=alice)
    make_job(  # an older failed sync, for the success rate and the History's badges
        connector,
        status=SyncJob.Status.FAILED,
        triggered_by=alice,
        created_at=timezone.now() - timedelta(hours=1),
        started_at=timezone.now() - timedelta(minutes=59),
        finished_at=timezone.now() - timedelta(minutes=58),
        error="WordPress answered 503 Service Unavailable for /api/v1/sync/articles "
        "after 5 attempts (the site may be overloaded or in maintenance mode).",
    )
    job = sync_services.start_sync(connector, SyncJob.Kind.FULL, user=alice)
    job.refresh_from_db()
    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert SyncLogEntry.objects.filter(job=job, status="FAILED").exists()
    test = diagnostics_services.request_connection_test(connector, user=alice)
    assert ConnectionTest.objects.get(pk=test.pk).passed
    make_connector(org_b, name="Globex members portal")
    connector.refresh_from_db()
    return connector, job


def visit(page, url, name, width):
    page.goto(url)
    page.wait_for_load_state("networkidle")
    problems = page.evaluate(OVERFLOW_JS, width >= 1000)
    problems += page.evaluate(A11Y_JS)
    problems += page.evaluate(CONTRAST_JS)
    screenshot(page, f"layout-{width}-{name}")
    return [f"{name} at {width}px: {problem}" for problem in problems]


def focus_problems(page, presses=12):
    """Tab through the first controls of the page: each must show that it has the focus."""
    problems = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_JS)
        if focused and not focused["ring"]:
            problems.append(f"no visible focus on {focused['tag']} {focused['text']!r}")
    return problems


# The walk in four parts (each width, each half of the pages), so that pytest-xdist spreads
# them over its workers: in one test it was the suite's longest (41 s idle). Each part seeds
# its own data, which takes a second or two.
@pytest.mark.slow
@pytest.mark.parametrize("half", [1, 2])
@pytest.mark.parametrize("label", list(WIDTHS))
def test_main_pages_fit_laptop_and_phone_widths(
    chromium, live_server, alice, root, org_a, org_b, simulator, eager_tasks, label, half
):
    width, height = WIDTHS[label]
    _site, server = simulator
    connector, job = seed(org_a, org_b, alice, server)
    failed_log = SyncLogEntry.objects.filter(job=job, status="FAILED").first()
    base = f"/o/{org_a.slug}/connectors/{connector.pk}"
    org_pages = [
        ("list", f"/o/{org_a.slug}/connectors/"),
        ("create", f"/o/{org_a.slug}/connectors/new/"),
        ("organisation-audit", f"/o/{org_a.slug}/connectors/audit/"),
        ("overview", f"{base}/"),
        ("history", f"{base}/history/"),
        ("activity", f"{base}/activity/"),
        ("audit", f"{base}/audit/"),
        ("settings", f"{base}/settings/"),
        ("job", job.get_absolute_url()),
        ("job-failed-rows", job.get_absolute_url() + "?status=FAILED"),
        ("connection-test", f"{base}/diagnostics/connection-test/"),
        ("mapping", f"{base}/diagnostics/mapping/"),
        ("delete", f"{base}/delete/"),
        ("notifications", f"/o/{org_a.slug}/notifications/"),
    ]
    record = RECORD_MODELS[failed_log.entity_type].objects.filter(connector=connector).first()
    if record is None:
        record = RECORD_MODELS["article"].objects.filter(connector=connector).first()
    org_pages.append(("record", f"/o/{org_a.slug}/records/{record.entity_type}/{record.pk}/"))

    middle = len(org_pages) // 2
    if half == 1:  # (user, whether the login page itself is walked first, pages)
        walks = [(alice, True, org_pages[:middle])]
    else:
        walks = [
            (alice, False, org_pages[middle:]),
            (root, False, [("platform-connectors", "/platform/connectors/")]),
        ]

    problems = []
    for user, login_page, pages in walks:
        context = chromium.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        try:
            if login_page:
                problems += visit(page, "/accounts/login/", "login", width)
            login(page, user)
            for name, url in pages:
                problems += visit(page, url, name, width)
                if name in ("overview", "job") and width >= 1000:
                    problems += focus_problems(page)
                if name == "overview":
                    # Plural names of entity types, never "Companys".
                    stats = page.locator("#statistics")
                    expect(stats).to_contain_text("Companies")
                    expect(stats).not_to_contain_text("Companys")
                    expect(page.locator("#counters table")).to_contain_text("Failed")
        finally:
            context.close()
        assert not errors, f"{label}: JavaScript errors {errors}"
    assert not problems, "\n".join(problems)

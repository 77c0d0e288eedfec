"""Hostile WordPress content never executes: sanitised on import (stored values checked),
escaped on render (every page that shows synced data), and a strict CSP on every HTML page
with no inline code for it to have to block."""

import pytest
from django.urls import reverse

from accounts.middleware import PUBLIC_PREFIXES
from audit.models import AuditEvent
from audit.services import record as record_audit
from records.models import RECORD_MODELS
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.runner import run_job
from syncjobs.services import start_sync
from tests.conftest import make_connector
from wpsim import SimulatedSite, serve

from .conftest import fill, object_values_for, project_urls
from .helpers import good_ids, purge_broker
from .hostile import XSS_TEXT, XSS_VECTORS, assert_no_raw_vector, dangerous_markup, inline_code
from .records import HTML_FIELDS, TEXT_FIELDS

KEY = "xss-test-sync-key-5e4d3c2b1a09f8e7d6c5b4a3928170ff"
ALL_TYPES = list(RECORD_MODELS)
# Vectors that are entity-encoded: decoded, they are legitimately *text* that looks like markup.
ENCODED = {i for i, v in enumerate(XSS_VECTORS) if v.startswith("&")}


def poison(site) -> dict:
    """Put one XSS vector in every text and HTML field of several records of every type."""
    poisoned = {}
    for entity_type in ALL_TYPES:
        # Records the platform imports (not the simulator's deliberately bad ones).
        ids = [int(i) for i in good_ids(site, entity_type)][: len(XSS_VECTORS)]
        for n, record_id in enumerate(ids):
            vector = XSS_VECTORS[n % len(XSS_VECTORS)]
            current = site.record(entity_type, record_id)
            fields = {
                name: f"Item {record_id} {vector}"
                for name in TEXT_FIELDS[entity_type]
                if name in current
            }
            fields.update(
                {name: f"<p>Body</p>{vector}" for name in HTML_FIELDS.get(entity_type, [])}
            )
            site.update(entity_type, record_id, **fields)
            poisoned[(entity_type, str(record_id))] = n % len(XSS_VECTORS)
    return poisoned


@pytest.fixture
def hostile_world(org_a, alice, root):
    """A connector synced from a site full of XSS vectors, plus vectors in everything the
    platform itself writes from site data: job errors, log rows, audit diffs, status."""
    site = SimulatedSite(records=60, seed=13, key=KEY)
    poisoned = poison(site)
    with serve(site) as server:
        purge_broker()
        connector = make_connector(org_a, site_url=server.url, api_key=KEY, entity_types=ALL_TYPES)
        job = run_job(start_sync(connector, SyncJob.Kind.FULL, user=alice).pk)
        assert job.status == SyncJob.Status.COMPLETED, job.error
        failed = SyncJob.objects.create(
            connector=connector,
            kind=SyncJob.Kind.INCREMENTAL,
            status=SyncJob.Status.FAILED,
            error=f"The site refused the request (HTTP 400): {XSS_TEXT}",
        )
        for n, vector in enumerate(XSS_VECTORS):
            SyncLogEntry.objects.create(
                job=failed,
                connector=connector,
                entity_type="article",
                external_id=vector[:64],
                operation="UPDATE",
                status="FAILED",
                error=f"title: {vector}",
            )
        record_audit(
            connector,
            AuditEvent.Action.UPDATED,
            actor=alice,
            changes={"name": {"before": XSS_VECTORS[0], "after": XSS_VECTORS[1]}},
        )
        type(connector).objects.filter(pk=connector.pk).update(
            name=f"Acme {XSS_VECTORS[2]}", status="ERROR", status_message=XSS_TEXT
        )
        connector.refresh_from_db()
        purge_broker()
        yield {
            "site": site,
            "connector": connector,
            "job": job,
            "failed": failed,
            "poisoned": poisoned,
        }


def poisoned_samples(world) -> list[tuple[str, str]]:
    """One poisoned record id per entity type: the one carrying `<img src=x onerror=...>`."""
    return sorted(
        (entity_type, external_id)
        for (entity_type, external_id), vector in world["poisoned"].items()
        if vector == 1
    )


def pages_showing_synced_data(world) -> list[tuple[str, dict]]:
    connector, job, failed = world["connector"], world["job"], world["failed"]
    args = ["acme", connector.pk]
    pages = [(reverse("connectors:list", args=["acme"]), {})]
    for name in ("detail", "history", "activity", "audit", "settings", "status"):
        pages.append((reverse(f"connectors:{name}", args=args), {}))
    for some_job in (job, failed):
        pages.append((reverse("syncjobs:detail", args=[*args, some_job.pk]), {}))
        pages.append(
            (reverse("syncjobs:status", args=[*args, some_job.pk]), {"HX-Request": "true"})
        )
        pages.append(
            (reverse("syncjobs:detail", args=[*args, some_job.pk]), {"HX-Request": "true"})
        )
    pages.append((reverse("diagnostics:mapping", args=args), {}))
    # Mapping diagnostics of one poisoned record of every type (fetched live from the site).
    for entity_type, record_id in poisoned_samples(world):
        pages.append(
            (
                reverse("diagnostics:mapping", args=args)
                + f"?entity_type={entity_type}&record_id={record_id}",
                {},
            )
        )
    pages.append((reverse("diagnostics:connection_test", args=args), {}))
    for entity_type, model in RECORD_MODELS.items():
        for record in model.objects.filter(connector=connector)[:4]:
            url = reverse("records:detail", args=["acme", entity_type, record.pk])
            pages.append((url, {}))
            pages.append((f"{url}?part=values", {"HX-Request": "true"}))  # WordPress's side
    return pages


@pytest.mark.django_db
def test_vectors_are_sanitised_on_import(hostile_world):
    connector = hostile_world["connector"]
    checked = 0
    site = hostile_world["site"]
    importable = {t: set(good_ids(site, t)) for t in ALL_TYPES}
    for (entity_type, external_id), vector_index in hostile_world["poisoned"].items():
        if external_id not in importable[entity_type]:
            continue  # lost its slug to an earlier record (the simulator serves duplicates)
        record = (
            RECORD_MODELS[entity_type]
            .objects.filter(connector=connector, external_id=external_id)
            .first()
        )
        if record is None:
            row = SyncLogEntry.objects.filter(
                job=hostile_world["job"], entity_type=entity_type, external_id=external_id
            ).first()
            raise AssertionError(f"{entity_type} {external_id} not imported: {row and row.error}")
        for name in HTML_FIELDS.get(entity_type, []):
            for field in _fields_from(entity_type, name):
                value = getattr(record, field)
                assert not dangerous_markup(value), (entity_type, field, value)
                checked += 1
        if vector_index not in ENCODED:
            for name in TEXT_FIELDS[entity_type]:
                for field in _fields_from(entity_type, name):
                    value = getattr(record, field)
                    assert "<" not in value or not dangerous_markup(value), (field, value)
                    checked += 1
    assert checked > 50


def _fields_from(entity_type, source):
    from records.mapping import mapping_for

    return [spec.name for spec in mapping_for(entity_type) if spec.source == source]


@pytest.mark.django_db
def test_vectors_are_escaped_on_every_page(hostile_world, alice_client, root_client):
    pages = pages_showing_synced_data(hostile_world)
    assert len(pages) > 20
    for url, headers in pages:
        response = alice_client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.status_code)
        assert_no_raw_vector(response.text, url)
        assert not inline_code(response.text), (url, inline_code(response.text))
    for url in (
        reverse("platform_admin:connectors"),
        reverse("connectors:detail", args=["acme", hostile_world["connector"].pk]),
    ):
        response = root_client.get(url)
        assert response.status_code == 200
        assert_no_raw_vector(response.text, url)
    # The CSV export is not HTML, but a spreadsheet must not run formulas from WordPress.
    csv = alice_client.get(
        reverse(
            "syncjobs:log_csv",
            args=["acme", hostile_world["connector"].pk, hostile_world["failed"].pk],
        )
    )
    assert csv.status_code == 200
    assert not csv["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_every_html_response_has_a_strict_csp_and_no_inline_code(
    populated, alice_client, root_client, client
):
    """Walk every GET URL of the project (read from the resolver)."""
    seen_html = 0
    for route, *_ in project_urls():
        if route == "metrics":
            continue  # text/plain behind its own token (tests/engine/test_metrics.py)
        path = fill(route, object_values_for(route, populated))
        user_client = root_client if route.startswith("platform/") else alice_client
        for who, http in (("user", user_client), ("anonymous", client)):
            for headers in ({}, {"HX-Request": "true"}):
                response = http.get(path, headers=headers)
                if response.status_code in (301, 302, 204, 405):
                    continue
                assert response.status_code == 200, (who, path, response.status_code)
                if not response.get("Content-Type", "").startswith("text/html"):
                    continue
                seen_html += 1
                csp = response.get("Content-Security-Policy", "")
                assert "script-src 'self'" in csp and "style-src 'self'" in csp, (path, csp)
                assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
                assert not inline_code(response.text), (path, inline_code(response.text))
    # Login page and error pages too.
    for path in ("/accounts/login/", "/o/acme/connectors/987654321/", "/no-such-page/"):
        response = alice_client.get(path)
        if response.get("Content-Type", "").startswith("text/html"):
            assert "script-src 'self'" in response.get("Content-Security-Policy", ""), path
    assert seen_html > 15
    assert PUBLIC_PREFIXES  # the anonymous pass above covered the public pages


@pytest.mark.django_db
def test_csp_on_html_answers_to_posts_and_errors(populated, alice, alice_client):
    """Not only GET pages: a form re-shown after a POST, an htmx fragment answering a POST,
    the CSRF failure page and 404/405 answers all carry the policy."""
    from django.test import Client

    checked = 0

    def check(response, where):
        nonlocal checked
        if not response.get("Content-Type", "").startswith("text/html") or not response.content:
            return  # nothing a browser renders (redirects, 204 + HX-Redirect)
        checked += 1
        csp = response.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "style-src 'self'" in csp, (where, csp)
        assert not inline_code(response.text), (where, inline_code(response.text))

    # Every URL of the project, POSTed with an empty form, as a full page and through htmx.
    for route, *_ in project_urls():
        if route.startswith(("platform/", "accounts/logout/")):
            continue  # platform pages: GET only; logging out would end the session
        path = fill(route, object_values_for(route, populated))
        for headers in ({}, {"HX-Request": "true"}):
            response = alice_client.post(path, {}, headers=headers)
            assert response.status_code != 500, path
            check(response, f"POST {path}")
    # The create and settings forms re-shown with errors.
    check(
        alice_client.post(reverse("connectors:create", args=["acme"]), {"name": ""}),
        "create form with errors",
    )
    check(
        alice_client.post(
            reverse("connectors:settings", args=["acme", populated["connector"].pk]),
            {"site_url": "not a url"},
        ),
        "settings form with errors",
    )
    # A POST without a CSRF token: Django's 403 page.
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    refused = strict.post(reverse("connectors:pause", args=["acme", populated["connector"].pk]))
    assert refused.status_code == 403
    check(refused, "CSRF failure page")
    assert "This form has expired" in refused.text and "Nothing was changed" in refused.text
    assert checked >= 6, checked


@pytest.mark.django_db
def test_markup_in_the_sites_error_page_is_quoted_as_text(org_a, alice, alice_client, monkeypatch):
    """The real path of "error messages from the site": the site answers an HTML page full of
    vectors, the client quotes its start in the job's error and in the connection test's step,
    and every page showing them escapes it."""
    import wpsim.api
    from diagnostics.models import ConnectionTest
    from diagnostics.runner import run_connection_test

    hostile_page = (
        b"<html><script>alert('xss-site-error')</script>"
        b"<img src=x onerror=\"alert('xss-site-img')\"><svg onload=alert(1)></html>"
    )
    monkeypatch.setattr(wpsim.api, "MAINTENANCE", hostile_page)
    site = SimulatedSite(records=20, seed=3, key=KEY)
    with serve(site) as server:
        purge_broker()
        connector = make_connector(org_a, site_url=server.url, api_key=KEY)
        site.inject("html", endpoint="articles", every=True)
        job = run_job(start_sync(connector, SyncJob.Kind.FULL, user=alice).pk)
        purge_broker()
        site.clear_faults()
        site.inject("html", endpoint="ping", nth=2)
        test = ConnectionTest.objects.create(connector=connector)
        run_connection_test(test.pk)
    test.refresh_from_db()
    assert job.status == SyncJob.Status.FAILED
    # Quoted verbatim (it is what the site said), so the pages must escape it.
    assert "<script>alert(" in job.error and "<img src=x onerror" in job.error
    assert "<script>alert(" in str(test.steps)
    args = ["acme", connector.pk]
    pages = [
        reverse("connectors:detail", args=args),
        reverse("connectors:history", args=args),
        reverse("connectors:activity", args=args),
        reverse("connectors:list", args=["acme"]),
        reverse("syncjobs:detail", args=[*args, job.pk]),
        reverse("diagnostics:connection_test", args=args),
    ]
    for url in pages:
        for headers in ({}, {"HX-Request": "true"}):
            response = alice_client.get(url, headers=headers)
            assert response.status_code == 200, url
            assert_no_raw_vector(response.text, url)
            if "/jobs/" in url or "/connection-test/" in url:
                # Shown in full there: as escaped text.
                assert "&lt;script&gt;alert(" in response.text, url

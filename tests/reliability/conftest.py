"""Fixtures of the reliability suite: a fully populated organisation (one of everything a URL
can point at), URL introspection, and count snapshots that prove "nothing changed"."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record as record_audit
from connectors.models import Connector
from records.models import RECORD_MODELS
from syncjobs.models import SyncJob, SyncLogEntry
from tests.conftest import make_connector as make_connector_for_tests

API_KEY_A = "acme-secret-sync-key-0123456789-abcdefghijklmnop"


def walk_urls():
    """Every routable pattern of the project as (route, converters, name, callback).

    `route` is the full path with `<conv:name>` placeholders; URLs added by any app later are
    found here without touching the tests."""
    found = []

    def visit(patterns, prefix, converters, namespace):
        for entry in patterns:
            route = str(entry.pattern)
            convs = dict(converters)
            convs.update(getattr(entry.pattern, "converters", {}) or {})
            if isinstance(entry, URLResolver):
                ns = namespace
                if entry.namespace:
                    ns = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
                visit(entry.url_patterns, prefix + route, convs, ns)
            elif isinstance(entry, URLPattern):
                name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
                found.append((prefix + route, convs, name, entry.callback))

    visit(get_resolver().url_patterns, "", {}, "")
    return found


PLACEHOLDER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")


def placeholders(route: str) -> list[str]:
    return [m.group("name") for m in PLACEHOLDER.finditer(route)]


def fill(route: str, values: dict) -> str:
    def sub(match):
        return str(values[match.group("name")])

    path = PLACEHOLDER.sub(sub, route)
    if path.startswith("^"):  # a re_path: nothing of ours uses one
        raise ValueError(route)
    return "/" + path


def project_urls():
    """Our own pages (Django's admin and the static-file view are third-party and excluded)."""
    return [
        item
        for item in walk_urls()
        if not item[0].startswith(("admin/", "static/", "^static", "media/")) and "^" not in item[0]
    ]


def object_values_for(
    route: str, populated, org_slug: str = "acme", entity_type: str = "article"
) -> dict:
    """Values for every placeholder of `route`, pointing at org A's objects (for a record
    URL, org A's record of `entity_type`)."""
    names = placeholders(route)
    values = {}
    for name in names:
        if name in ("org", "organisation", "slug", "org_slug"):
            values[name] = org_slug
        elif name == "connector":
            values[name] = populated["connector"].pk
        elif name == "job":
            values[name] = populated["job"].pk
        elif name in ("entity_type", "type", "kind"):
            values[name] = entity_type
        elif name in ("record", "record_id", "uuid") or (
            name == "pk" and ("records/" in route or "entity_type" in names)
        ):
            values[name] = populated["records"][entity_type].pk
        elif name in ("test", "test_id", "connection_test", "run") or (
            name == "pk" and "diagnostics/" in route
        ):
            values[name] = populated["test"].pk
        elif name == "webhook":
            values[name] = populated["webhook"].pk
        elif name in ("event", "audit", "audit_event"):
            values[name] = populated["event"].pk
        elif name == "pk" and "jobs/" in route:
            values[name] = populated["job"].pk
        elif name == "pk" and "connectors/" in route:
            values[name] = populated["connector"].pk
        else:
            pytest.fail(
                f"The tenancy matrix does not know what URL kwarg {name!r} of {route!r} "
                "points at: teach object_values() so the new view is covered."
            )
    return values


def state_snapshot() -> dict:
    """Row counts and the mutable columns of every connector/job: equal before and after a
    request means the request changed nothing."""
    from diagnostics.models import ConnectionTest
    from notifications.models import EmailMute, Preference, WebhookEndpoint

    snap = {
        "connectors": list(
            Connector.objects.order_by("pk").values_list(
                "pk",
                "name",
                "site_url",
                "status",
                "frequency",
                "api_key_encrypted",
                "entity_types",
                "field_mapping_overrides",
                "next_sync_at",
                "organisation_id",
            )
        ),
        "jobs": list(
            SyncJob.objects.order_by("pk").values_list(
                "pk", "status", "cancel_requested_at", "connector_id"
            )
        ),
        "log": SyncLogEntry.objects.count(),
        "audit": AuditEvent.objects.count(),
        "tests": ConnectionTest.objects.count(),
        "webhooks": list(WebhookEndpoint.objects.order_by("pk").values_list("pk", "url")),
        "mutes": EmailMute.objects.count(),
        "preferences": list(Preference.objects.values_list("pk", "enabled")),
    }
    for entity_type, model in RECORD_MODELS.items():
        snap[entity_type] = list(
            model.objects.order_by("pk").values_list("pk", "connector_id", "archived_at")
        )
    return snap


def make_record(entity_type, connector, external_id="1", **fields):
    now = timezone.now()
    defaults = {
        "article": {"title": "An article", "slug": f"article-{external_id}"},
        "member": {"email": f"m{external_id}@example.org", "display_name": "A member"},
        "event": {"title": "An event", "slug": f"event-{external_id}", "starts_at": now},
        "document": {"title": "A document", "slug": f"document-{external_id}"},
        "conference": {
            "title": "A conference",
            "slug": f"conference-{external_id}",
            "start_date": now.date(),
        },
        "company": {"name": "A company", "slug": f"company-{external_id}"},
        "notification": {"title": "A notification"},
    }[entity_type]
    defaults.update(fields)
    return RECORD_MODELS[entity_type].objects.create(
        organisation=connector.organisation,
        connector=connector,
        external_id=external_id,
        source_modified_at=now,
        last_synced_at=now,
        **defaults,
    )


@pytest.fixture
def populated(org_a, alice, connector_a):
    """Org A with one of everything: a finished job with log rows, a record of every type, a
    connection test and audit events. Returned as {url kwarg name: value} plus the objects."""
    from diagnostics.models import ConnectionTest
    from notifications.models import WebhookEndpoint

    connector_a.api_key = API_KEY_A
    connector_a.save()
    now = timezone.now()
    job = SyncJob.objects.create(
        connector=connector_a,
        kind=SyncJob.Kind.FULL,
        status=SyncJob.Status.COMPLETED,
        started_at=now - timedelta(minutes=1),
        finished_at=now,
        stats={"article": {"total": 1, "processed": 1, "created": 1}},
    )
    # A second connector of org A with a job in flight: the juiciest target (cancel).
    busy = make_connector_for_tests(org_a, name="Acme busy site")
    running = SyncJob.objects.create(
        connector=busy,
        kind=SyncJob.Kind.FULL,
        status=SyncJob.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
    )
    records = {et: make_record(et, connector_a, external_id="7") for et in RECORD_MODELS}
    SyncLogEntry.objects.create(
        job=job,
        connector=connector_a,
        entity_type="article",
        external_id="7",
        internal_id=records["article"].pk,
        operation=SyncLogEntry.Operation.CREATE,
        status=SyncLogEntry.Status.SUCCESS,
    )
    test = ConnectionTest.objects.create(
        connector=connector_a, status=ConnectionTest.Status.PASSED, finished_at=now
    )
    event = record_audit(connector_a, AuditEvent.Action.UPDATED, actor=alice, changes={})
    webhook = WebhookEndpoint(organisation=org_a, url="https://hooks.example.org/acme")
    webhook.set_secret("acme-webhook-secret")
    webhook.save()
    return {
        "webhook": webhook,
        "connector": connector_a,
        "job": job,
        "running": running,
        "records": records,
        "test": test,
        "event": event,
    }


def using_postgresql() -> bool:
    return connection.vendor == "postgresql"

"""Rough edges a new user hit on `make demo` (issue 18): list order, the audit log's deletion
time, the README's demo keys."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from connectors import services
from tests.conftest import make_connector

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_connectors_list_sorts_names_case_insensitively(alice_client, org_a):
    for name in ("beta site", "Alpha site", "Zeta site", "acme events"):
        make_connector(org_a, name=name)
    page = alice_client.get(reverse("connectors:list", args=["acme"])).content.decode()
    order = re.findall(r"(acme events|Alpha site|beta site|Zeta site)</a>", page)
    assert order == ["acme events", "Alpha site", "beta site", "Zeta site"]


@pytest.mark.django_db
def test_the_audit_log_shows_a_deletion_time_as_a_time_not_a_raw_timestamp(
    alice_client, alice, org_a
):
    connector = make_connector(org_a, name="Short-lived")
    services.delete_connector(connector, user=alice)
    page = alice_client.get(reverse("connectors:organisation_audit", args=["acme"]))
    text = page.content.decode()
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+\+00:00<", text)
    match = re.search(
        r'<time datetime="([^"]+)">(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC)</time>', text
    )
    assert match, text
    assert match.group(1).endswith("+00:00")


def test_the_readme_gives_the_demo_sites_sync_keys():
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    readme = (ROOT / "README.md").read_text()
    for port, _records, _seed, key in demo.SITES:
        assert f"`http://127.0.0.1:{port}` | `{key}`" in readme


@pytest.mark.django_db
def test_the_overview_says_when_the_first_import_will_run(alice_client, org_a):
    from datetime import timedelta

    from django.utils import timezone

    connector = make_connector(org_a, name="New", next_sync_at=timezone.now() + timedelta(hours=1))
    url = reverse("connectors:detail", args=["acme", connector.pk])
    html = alice_client.get(url).text
    assert "That sync is the <strong>initial import</strong>" in html
    assert "Run Initial Import" in html

    connector.initial_import_done_at = timezone.now()
    connector.save()
    assert "That sync is the" not in alice_client.get(url).text

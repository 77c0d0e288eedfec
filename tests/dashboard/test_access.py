"""Every dashboard view, for the whole cast: alice (owner) 200, bob (outsider) 404,
root (platform admin) 200, anonymous sent to log in."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from records.models import Article

from .conftest import make_job


@pytest.fixture
def record_a(org_a, connector_a):
    return Article.objects.create(
        organisation=org_a, connector=connector_a, external_id="77", title="Hello <b>world</b>"
    )


def urls_for(connector, job, record):
    org = connector.organisation.slug
    c = connector.pk
    return [
        reverse("connectors:list", args=[org]),
        reverse("connectors:create", args=[org]),
        reverse("connectors:organisation_audit", args=[org]),
        reverse("connectors:detail", args=[org, c]),
        reverse("connectors:status", args=[org, c]),
        reverse("connectors:history", args=[org, c]),
        reverse("connectors:activity", args=[org, c]),
        reverse("connectors:audit", args=[org, c]),
        reverse("connectors:settings", args=[org, c]),
        reverse("connectors:delete", args=[org, c]),
        reverse("syncjobs:detail", args=[org, c, job.pk]),
        reverse("syncjobs:status", args=[org, c, job.pk]),
        reverse("syncjobs:log_csv", args=[org, c, job.pk]),
        reverse("records:detail", args=[org, "article", record.pk]),
    ]


@pytest.fixture
def every_url(connector_a, record_a):
    return urls_for(connector_a, make_job(connector_a), record_a)


def test_owner_sees_every_page(alice_client, every_url):
    for url in every_url:
        assert alice_client.get(url).status_code == 200, url


def test_platform_admin_sees_every_page_with_the_banner(root_client, every_url):
    for url in every_url:
        response = root_client.get(url)
        assert response.status_code == 200, url
        if response["Content-Type"].startswith("text/html"):
            assert "Viewing as platform admin" in response.text, url


def test_outsider_gets_404_everywhere(bob_client, connector_b, every_url):
    for url in every_url:
        assert bob_client.get(url).status_code == 404, url


def test_outsider_gets_404_even_under_their_own_slug(
    bob_client, connector_a, connector_b, record_a
):
    """Bob's org slug with Acme's connector/job/record ids: still 404."""
    job = make_job(connector_a)
    c = connector_a.pk
    for url in [
        reverse("connectors:detail", args=["globex", c]),
        reverse("connectors:settings", args=["globex", c]),
        reverse("syncjobs:detail", args=["globex", connector_b.pk, job.pk]),
        reverse("syncjobs:log_csv", args=["globex", connector_b.pk, job.pk]),
        reverse("records:detail", args=["globex", "article", record_a.pk]),
    ]:
        assert bob_client.get(url).status_code == 404, url


def test_anonymous_is_sent_to_login(client, every_url):
    for url in every_url:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


def test_anonymous_htmx_poll_gets_a_full_page_redirect(client, connector_a):
    job = make_job(connector_a, status="RUNNING")
    url = reverse("syncjobs:status", args=["acme", connector_a.pk, job.pk])
    response = client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith("/accounts/login/")


def test_unknown_record_type_is_404(alice_client, record_a):
    assert alice_client.get(f"/o/acme/records/widget/{record_a.pk}/").status_code == 404


def test_record_page_shows_sanitised_content(alice_client, org_a, connector_a):
    record = Article.objects.create(
        organisation=org_a,
        connector=connector_a,
        external_id="78",
        title="Scripted",
        content='<p>Fine</p><script>alert("x")</script><img src="x" onerror="alert(1)">',
        featured_image_url="javascript:alert(1)",
        published_at=datetime(2024, 2, 25, 12, 17, tzinfo=UTC),
    )
    response = alice_client.get(reverse("records:detail", args=["acme", "article", record.pk]))
    # Times read like everywhere else on the dashboard, not Django's "Feb. 25, 2024, 12:17 p.m."
    assert '<time datetime="2024-02-25T12:17:00+00:00">2024-02-25 12:17</time>' in response.text
    assert "<p>Fine</p>" in response.text
    assert "<script>alert" not in response.text
    assert "onerror" not in response.text
    assert 'href="javascript:' not in response.text
    assert connector_a.name in response.text

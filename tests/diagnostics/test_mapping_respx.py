"""Mapping Diagnostics against a scripted site (respx): every field status, overrides,
one record by ID, escaping and truncation, site-level errors, and nothing written."""

import httpx
import pytest
import respx
from django.urls import reverse

from connectors.wordpress import contract
from diagnostics.mapping_check import DISPLAY_CHARS
from tests.conftest import make_connector

from .conftest import KEY

SITE = "http://127.0.0.1:9"

DOCUMENT = {
    "id": 301,
    "modified_gmt": "2024-10-01T09:00:00",
    "date_gmt": "2024-10-01T09:00:00",
    "status": "publish",
    "slug": "safety-policy",
    "link": f"{SITE}/documents/safety-policy/",
    "password_protected": False,
    "title": "Safety policy &amp; rules",
    # "kind" absent -> DEFAULT_USED ("document")
    "folder_path": "Policies/2024",
    "file_url": "https://cdn.example.org/policy.pdf",
    "mime_type": "application/pdf",
    "size": None,  # null, no default -> MISSING
    "access_level": "top-secret",  # not a valid choice -> INVALID
}
ARTICLE = {
    "id": 7,
    "modified_gmt": "2024-11-30T08:00:00",
    "date_gmt": "2024-11-30T08:00:00",
    "status": "publish",
    "slug": "hello",
    "link": f"{SITE}/hello/",
    "title": "<script>alert('x')</script>Hello",
    "excerpt": "",
    "content": "<p>" + "long text " * 100 + "</p>",
    "author": {"display": "Ann Author"},
    "author_name": "ignored by the override",
    "categories": ["News"],
    "tags": [],
    "featured_image_url": None,
}


def listing(items, total=None):
    total = len(items) if total is None else total
    return httpx.Response(
        200, json={"items": items, "page": 1, "per_page": 1, "total": total, "total_pages": total}
    )


def keyed(response):
    def handler(request):
        if request.headers.get(contract.KEY_HEADER) != KEY:
            return httpx.Response(
                401,
                json={
                    "code": contract.ERROR_INVALID_KEY,
                    "message": "bad",
                    "data": {"status": 401},
                },
            )
        return response

    return handler


@pytest.fixture
def site():
    with respx.mock(base_url=SITE, assert_all_called=False) as mock:
        mock.get("/api/v1/sync/articles", name="articles").mock(
            side_effect=keyed(listing([ARTICLE], total=40))
        )
        mock.get("/api/v1/sync/documents", name="documents").mock(
            side_effect=keyed(listing([DOCUMENT], total=3))
        )
        mock.get("/api/v1/sync/events", name="events").mock(side_effect=keyed(listing([])))
        yield mock


@pytest.fixture
def connector(org_a):
    return make_connector(
        org_a,
        site_url=SITE,
        api_key=KEY,
        entity_types=["article", "event", "document"],
        field_mapping_overrides={"article": {"author_name": "author.display"}},
    )


def mapping_url(connector):
    return reverse("diagnostics:mapping", args=[connector.organisation.slug, connector.pk])


def rows_of(report):
    return {row.name: row for row in report.rows}


def test_every_field_status_is_reported(site, connector, alice_client, unchanged_platform_data):
    from diagnostics.services import run_mapping_diagnostics

    result = run_mapping_diagnostics(connector, ["document"])
    (report,) = result.reports
    rows = rows_of(report)
    assert rows["title"].status == "PRESENT"
    assert rows["title"].raw == "Safety policy &amp; rules"
    assert rows["title"].value == "Safety policy & rules"
    assert rows["kind"].status == "DEFAULT_USED"
    assert rows["kind"].raw == "(not in the record)" and rows["kind"].value == "document"
    assert rows["size"].status == "MISSING" and rows["size"].raw == "null"
    assert rows["access_level"].status == "INVALID"
    assert "'top-secret' is not one of public, members, admins" in rows["access_level"].error
    # status and password_protected (contract 1.2) are mapped for documents too.
    assert rows["status"].status == rows["password_protected"].status == "PRESENT"
    assert report.counts == {"PRESENT": 7, "DEFAULT_USED": 1, "MISSING": 1, "INVALID": 1}
    assert report.record_errors and not report.ok
    assert report.external_id == "301"

    html = alice_client.get(mapping_url(connector), {"entity_type": "document"}).text
    assert 'data-field="access_level" data-status="INVALID"' in html
    assert 'data-field="kind" data-status="DEFAULT_USED"' in html
    assert 'data-field="size" data-status="MISSING"' in html
    assert 'data-field="title" data-status="PRESENT"' in html
    assert "The sync would record this document as FAILED" in html
    assert "Safety policy &amp;amp; rules" in html  # the raw value, escaped once more
    assert "the least recently modified of 3 document records" in html


def test_overrides_escaping_and_truncation(site, connector, alice_client, unchanged_platform_data):
    response = alice_client.get(mapping_url(connector), {"entity_type": "article"})
    assert response.status_code == 200
    html = response.text
    # The connector's override is what is dry-run: the source path and its value show.
    assert "<code>author.display</code>" in html
    assert "Ann Author" in html
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;Hello" in html
    long_raw = "<p>" + "long text " * 100 + "</p>"
    assert long_raw not in html.replace("&lt;", "<").replace("&gt;", ">")
    assert "…" in html
    assert 'data-field="featured_image_url" data-status="MISSING"' in html
    assert "This record would sync." in html


def test_display_values_are_truncated():
    from diagnostics.mapping_check import display_value

    assert len(display_value("x" * 1000)) == DISPLAY_CHARS
    assert display_value({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert display_value(None) == "null"


def test_all_enabled_types_by_default(site, connector, alice_client, unchanged_platform_data):
    html = alice_client.get(mapping_url(connector)).text
    assert 'id="mapping-article"' in html
    assert 'id="mapping-document"' in html
    assert 'id="mapping-event"' in html
    assert "The site has no event records yet" in html
    assert site.routes["articles"].calls.last.request.url.params["per_page"] == "1"


def test_one_record_by_wordpress_id(site, connector, alice_client, unchanged_platform_data):
    site.get("/api/v1/sync/documents/301").mock(
        side_effect=keyed(httpx.Response(200, json=DOCUMENT))
    )
    html = alice_client.get(
        mapping_url(connector), {"entity_type": "document", "record_id": "301"}
    ).text
    assert "Record 301, as requested." in html
    assert "WordPress ID 301" in html
    assert 'id="mapping-article"' not in html


def test_unknown_record_id_says_so(site, connector, alice_client):
    site.get("/api/v1/sync/events/65").respond(
        404,
        json={
            "code": contract.ERROR_NOT_FOUND,
            "message": "No event with id 65.",
            "data": {"status": 404, "entity_type": "event", "id": 65},
        },
    )
    html = alice_client.get(
        mapping_url(connector), {"entity_type": "event", "record_id": "65"}
    ).text
    assert "WordPress serves no event with ID 65" in html


def test_site_level_error_stops_after_the_first_type(site, org_a, alice_client):
    connector = make_connector(
        org_a,
        site_url=SITE,
        api_key="wrong-key-0123456789abcdef0123456789",
        entity_types=["article", "document"],
    )
    html = alice_client.get(mapping_url(connector)).text
    assert "WordPress could not be read: The site rejected the sync API key" in html
    assert "Not checked: see the error above." in html
    assert site.routes["documents"].call_count == 0


def test_invalid_overrides_are_reported(site, org_a, alice_client):
    connector = make_connector(
        org_a,
        site_url=SITE,
        api_key=KEY,
        entity_types=["article"],
        field_mapping_overrides={"article": {"no_such_field": "title"}},
    )
    html = alice_client.get(mapping_url(connector)).text
    assert "field mapping overrides for article are invalid" in html
    assert "&#x27;no_such_field&#x27; is not a platform field" in html


def test_no_key_means_no_request(org_a, alice_client):
    connector = make_connector(org_a, site_url=SITE, api_key="", entity_types=["article"])
    with respx.mock(base_url=SITE) as mock:  # any request would be unmatched and fail
        html = alice_client.get(mapping_url(connector)).text
        assert not mock.calls
    assert "No API key is saved for this connector" in html


def test_display_of_dates_and_empty_strings():
    from datetime import UTC, date, datetime

    from diagnostics.mapping_check import display_value

    assert display_value(datetime(2024, 11, 30, 8, 0, tzinfo=UTC)) == "2024-11-30 08:00:00 UTC"
    assert display_value(date(2025, 6, 10)) == "2025-06-10"
    assert display_value("") == "(empty string)"

"""Platform → Connectors: every organisation's connectors, for platform admins only."""

import re
from html import unescape

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organisation
from connectors.models import Connector
from syncjobs.models import SyncJob

URL = reverse("platform_admin:connectors")
HTMX = {"HTTP_HX_REQUEST": "true"}


def row_names(response) -> list[str]:
    """Connector names in table order, as the user reads them."""
    return [
        unescape(name)
        for name in re.findall(r'<th scope="row"><a href="[^"]+">([^<]+)</a>', response.text)
    ]


def row_links(response) -> list[str]:
    return re.findall(r'<th scope="row"><a href="([^"]+)">', response.text)


def stat(response, key) -> int:
    match = re.search(
        rf'data-stat="{key}">\s*<(?:span|a)[^>]*class="stat-value"[^>]*>(\d+)<', response.text
    )
    assert match, f"no {key} card on the page"
    return int(match.group(1))


# Access control: every role of the cast, on the full page and on the htmx partial.


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "partial"])
def test_org_admins_get_404(alice_client, bob_client, platform, headers):
    for client in (alice_client, bob_client):
        response = client.get(URL, **headers)
        assert response.status_code == 404
        assert "Globex news" not in response.text
        assert "Umbrella blog" not in response.text


def test_platform_admin_gets_the_page(root_client, platform):
    response = root_client.get(URL)
    assert response.status_code == 200
    assert "Connectors of every organisation" in response.text


def test_anonymous_is_sent_to_login(client, platform):
    response = client.get(URL + "?status=ERROR")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=/platform/connectors/")


def test_anonymous_htmx_request_redirects_the_whole_page(client, platform):
    response = client.get(URL, **HTMX)
    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("login")


def test_org_admin_pages_do_not_show_the_platform(alice_client, platform):
    response = alice_client.get(reverse("connectors:list", args=["acme"]))
    assert response.status_code == 200
    assert URL not in response.text
    assert "Umbrella blog" not in response.text
    assert "Globex news" not in response.text
    assert "Viewing as platform admin" not in response.text


# Summary cards against the known fleet.


def test_summary_counts(root_client, platform):
    response = root_client.get(URL)
    assert stat(response, "total") == 5
    assert stat(response, "active") == 2
    assert stat(response, "error") == 2
    assert stat(response, "paused") == 1
    assert stat(response, "organisations") == 3  # Initech has no connector
    assert stat(response, "failed_jobs_24h") == 2  # the 25-hour-old failure is outside


def test_summary_ignores_the_filters(root_client, platform):
    response = root_client.get(URL + "?status=PAUSED&q=globex")
    assert row_names(response) == ["Globex Guild site"]
    assert stat(response, "total") == 5


# The table.


def test_table_lists_every_organisation_with_the_latest_job(root_client, platform):
    response = root_client.get(URL)
    # Default order: organisation, then name.
    assert row_names(response) == [
        "Acme archive",
        "Acme Association site",
        "Globex Guild site",
        "Globex news",
        "Umbrella blog",
    ]
    text = response.text
    assert "Umbrella Union" in text
    assert "WordPress answered 401: the API key was rejected." in text
    rows = re.findall(r'<tr class="table-clickable".*?</tr>', text, re.S)
    acme_site = next(row for row in rows if "Acme Association site" in row)
    # The latest job (completed an hour ago) wins over the older failure.
    assert 'class="badge badge-completed">Completed<' in acme_site
    assert "an hour ago" in acme_site
    assert "badge-failed" not in acme_site
    news = next(row for row in rows if "Globex news" in row)
    assert 'class="badge badge-running">Running<' in news
    assert "Manual only" in news
    paused = next(row for row in rows if "Globex Guild site" in row)
    assert 'class="badge badge-paused">Paused<' in paused
    assert "Never" in paused
    blog = next(row for row in rows if "Umbrella blog" in row)
    assert 'class="badge badge-error">Error<' in blog
    assert 'class="badge badge-failed">Failed<' in blog
    assert "in 1\xa0hour" in blog


def test_rows_open_the_connector_in_its_organisation(root_client, platform, connector_a):
    response = root_client.get(URL)
    detail = reverse("connectors:detail", args=["acme", connector_a.pk])
    assert detail in row_links(response)
    assert f'data-href="{detail}"' in response.text
    blog = platform["blog"]
    assert f'data-href="/o/umbrella/connectors/{blog.pk}/"' in response.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=news", ["Globex news"]),
        ("q=ACME", ["Acme archive", "Acme Association site"]),  # case-insensitive
        ("q=umbrella+union", ["Umbrella blog"]),  # organisation name
        ("q=nothing-like-this", []),
        ("status=ERROR", ["Acme archive", "Umbrella blog"]),
        ("status=PAUSED", ["Globex Guild site"]),
        ("status=ACTIVE", ["Acme Association site", "Globex news"]),
        (
            "kind=wordpress",
            [
                "Acme archive",
                "Acme Association site",
                "Globex Guild site",
                "Globex news",
                "Umbrella blog",
            ],
        ),
        ("q=acme&status=ACTIVE", ["Acme Association site"]),
    ],
)
def test_filters_and_search(root_client, platform, query, expected):
    response = root_client.get(f"{URL}?{query}")
    assert response.status_code == 200
    assert row_names(response) == expected


def test_filters_stay_in_the_form(root_client, platform):
    response = root_client.get(URL + "?q=acme&status=ERROR")
    assert 'value="acme"' in response.text
    assert '<option value="ERROR" selected>' in response.text


def test_no_match_says_so(root_client, platform):
    response = root_client.get(URL + "?q=nothing-like-this")
    assert "No connector matches these filters." in response.text


def test_invalid_filter_is_reported_and_ignored(root_client, platform):
    response = root_client.get(URL + "?status=BROKEN&sort=password")
    assert response.status_code == 200
    assert "Status: Select a valid choice. BROKEN is not one of the available choices." in (
        unescape(response.text)
    )
    assert "Sort: Select a valid choice." in unescape(response.text)
    assert len(row_names(response)) == 5


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (
            "name",
            [
                "Acme archive",
                "Acme Association site",
                "Globex Guild site",
                "Globex news",
                "Umbrella blog",
            ],
        ),
        (
            "-name",
            [
                "Umbrella blog",
                "Globex news",
                "Globex Guild site",
                "Acme Association site",
                "Acme archive",
            ],
        ),
        (
            "-organisation",
            [
                "Umbrella blog",
                "Globex news",
                "Globex Guild site",
                "Acme Association site",
                "Acme archive",
            ],
        ),
        (
            "status",
            [
                "Acme Association site",
                "Globex news",
                "Acme archive",
                "Umbrella blog",
                "Globex Guild site",
            ],
        ),
        # Latest job time; never-synced connectors last in both directions.
        (
            "last_sync",
            [
                "Acme archive",
                "Acme Association site",
                "Umbrella blog",
                "Globex news",
                "Globex Guild site",
            ],
        ),
        (
            "-last_sync",
            [
                "Globex news",
                "Umbrella blog",
                "Acme Association site",
                "Acme archive",
                "Globex Guild site",
            ],
        ),
        (
            "next_sync",
            [
                "Acme Association site",
                "Umbrella blog",
                "Acme archive",
                "Globex Guild site",
                "Globex news",
            ],
        ),
        (
            "-next_sync",
            [
                "Acme archive",
                "Umbrella blog",
                "Acme Association site",
                # Ties (both NULL) fall back to the id, descending too.
                "Globex news",
                "Globex Guild site",
            ],
        ),
    ],
)
def test_sorting(root_client, platform, connector_b, sort, expected):
    # The paused and the manual connector have no next sync (NULL): always last.
    Connector.objects.filter(pk__in=[connector_b.pk, platform["news"].pk]).update(next_sync_at=None)
    response = root_client.get(f"{URL}?sort={sort}")
    assert row_names(response) == expected


def test_sort_headers_toggle_and_keep_the_filters(root_client, platform):
    response = root_client.get(URL + "?q=acme&sort=name")
    text = unescape(response.text)
    assert 'aria-sort="ascending"' in text
    assert "?q=acme&sort=-name" in text  # the active column flips direction
    assert "?q=acme&sort=status" in text  # other columns start ascending
    # The sort rides along with the next search (the hidden input belongs to the form).
    assert 'name="sort" value="name" form="connector-filters"' in text
    response = root_client.get(URL + "?q=acme&sort=-name")
    assert 'aria-sort="descending"' in response.text


@pytest.fixture
def many(org_a):
    """120 connectors in Acme: three pages of 50."""
    Connector.objects.bulk_create(
        Connector(organisation=org_a, name=f"Site {n:03d}", site_url="https://wp.example.org")
        for n in range(120)
    )


def test_pagination(root_client, many):
    first = root_client.get(URL + "?sort=name")
    assert row_names(first)[0] == "Site 000"
    assert len(row_names(first)) == 50
    assert "Showing 1–50 of 120 connectors." in first.text
    assert "?sort=name&amp;page=2" in first.text
    last = root_client.get(URL + "?sort=name&page=3")
    assert row_names(last) == [f"Site {n:03d}" for n in range(100, 120)]
    assert "Showing 101–120 of 120 connectors." in last.text
    assert 'rel="prev"' in last.text and 'rel="next"' not in last.text
    # Out of range or garbage: the nearest real page, never an error.
    assert row_names(root_client.get(URL + "?sort=name&page=99")) == row_names(last)
    assert row_names(root_client.get(URL + "?sort=name&page=x"))[0] == "Site 000"


def test_pagination_keeps_the_filters(root_client, many):
    response = root_client.get(URL + "?q=site+0&sort=-name")
    assert "Showing 1–50 of 100 connectors matching the filters." in response.text
    assert "?q=site+0&amp;sort=-name&amp;page=2" in response.text


# htmx: the same view renders the table partial.


def test_htmx_request_gets_only_the_table(root_client, platform):
    response = root_client.get(URL + "?status=ERROR", **HTMX)
    text = response.text
    assert response.status_code == 200
    assert text.lstrip().startswith('<div id="connector-table"')
    assert "<html" not in text
    assert 'class="stats-grid"' not in text
    assert 'id="connector-filters"' not in text  # the form is not replaced while typing
    assert row_names(response) == ["Acme archive", "Umbrella blog"]
    assert "HX-Request" in response["Vary"]


def test_htmx_pushes_the_canonical_url(root_client, platform, many):
    # The raw form submission carries empty fields; the address bar gets the clean link.
    response = root_client.get(URL + "?q=&status=ERROR&kind=", **HTMX)
    assert response["HX-Push-Url"] == URL + "?status=ERROR"
    response = root_client.get(URL + "?q=site&status=&kind=&sort=-name&page=2", **HTMX)
    assert response["HX-Push-Url"] == URL + "?q=site&sort=-name&page=2"
    response = root_client.get(URL + "?q=&status=&kind=", **HTMX)
    assert response["HX-Push-Url"] == URL
    # A page past the end is pushed as the page actually shown.
    response = root_client.get(URL + "?page=999", **HTMX)
    assert response["HX-Push-Url"] == URL + "?page=3"


def test_full_page_has_the_table_inside(root_client, platform):
    response = root_client.get(URL + "?status=ERROR")
    text = response.text
    assert "<html" in text and 'class="stats-grid"' in text
    assert 'id="connector-filters"' in text and 'hx-push-url="true"' in text
    assert 'method="get"' in text  # works without JavaScript
    assert '<div id="connector-table"' in text
    assert row_names(response) == ["Acme archive", "Umbrella blog"]
    assert "HX-Request" in response["Vary"]


def test_history_restore_gets_the_full_page(root_client, platform):
    response = root_client.get(
        URL + "?status=ERROR", HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX
    )
    assert "<html" in response.text and 'class="stats-grid"' in response.text


def test_htmx_partial_needs_no_summary_queries(root_client, platform):
    with CaptureQueriesContext(connection) as full:
        root_client.get(URL)
    with CaptureQueriesContext(connection) as partial:
        root_client.get(URL, **HTMX)
    # The summary cards' aggregate and the failed-jobs count are skipped.
    assert len(partial) < len(full)
    assert [q for q in full.captured_queries if "FILTER (WHERE" in q["sql"]]
    assert [q for q in full.captured_queries if '"finished_at" >=' in q["sql"]]
    assert not [q for q in partial.captured_queries if "FILTER (WHERE" in q["sql"]]
    assert not [q for q in partial.captured_queries if '"finished_at" >=' in q["sql"]]


# Drill-down: the connector's own page, in its organisation's context.


def test_drill_down_shows_the_organisation_banner(root_client, platform, connector_a):
    listing = root_client.get(URL + "?q=acme+association+site")
    (detail_url,) = row_links(listing)
    response = root_client.get(detail_url)
    assert response.status_code == 200
    text = unescape(response.text)
    banner = re.search(r'<div class="context-banner"[^>]*>(.*?)</div>', text, re.S)
    assert banner, "no platform admin banner on the detail page"
    assert re.sub(r"<[^>]+>", "", banner.group(1)).startswith(
        "Viewing as platform admin · organisation Acme Association"
    )
    assert connector_a.name in text
    # Every organisation-scoped link on the page stays in Acme.
    org_links = [
        href
        for href in re.findall(r'(?:href|hx-get|hx-post|action)="([^"]+)"', text)
        if href.startswith("/o/")
    ]
    assert org_links, "the detail page links to nothing in its organisation"
    assert all(href.startswith("/o/acme/") for href in org_links), org_links
    # And the way back to the platform list.
    assert f'href="{URL}"' in text


def test_org_admin_sees_no_banner_on_own_connector(alice_client, connector_a):
    response = alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk]))
    assert response.status_code == 200
    assert "Viewing as platform admin" not in response.text


# Constant number of queries, whatever the size of the fleet.


def _grow(count, start):
    orgs = Organisation.objects.bulk_create(
        Organisation(name=f"Org {n:04d}", slug=f"org-{n:04d}") for n in range(start, start + count)
    )
    connectors = Connector.objects.bulk_create(
        Connector(
            organisation=org,
            name=f"Site {n}",
            site_url="https://wp.example.org",
            status=[Connector.Status.ACTIVE, Connector.Status.ERROR, Connector.Status.PAUSED][
                n % 3
            ],
        )
        for n, org in enumerate(orgs, start)
        for _ in range(1)
    )
    SyncJob.objects.bulk_create(
        SyncJob(
            connector=c,
            kind=SyncJob.Kind.FULL,
            status=SyncJob.Status.FAILED,
            finished_at=timezone.now(),
        )
        for c in connectors
    )


@pytest.mark.parametrize(
    "query", ["", "?q=site&status=ERROR&sort=-last_sync", "?sort=next_sync&page=2"]
)
def test_query_count_is_constant(root_client, platform, django_assert_max_num_queries, query):
    _grow(10, 0)
    # 8 for the page, 2 for the last 7 days' charts (jobs per hour, failure causes), and the
    # SAVEPOINT / RELEASE that ATOMIC_REQUESTS issues inside the test's own transaction (in
    # production it is a BEGIN / COMMIT, which Django does not count as queries).
    with CaptureQueriesContext(connection) as small, django_assert_max_num_queries(12):
        assert root_client.get(URL + query).status_code == 200
    _grow(150, 10)
    cache.clear()  # the charts' cached fragment: both requests count the cold page
    with CaptureQueriesContext(connection) as large, django_assert_max_num_queries(12):
        response = root_client.get(URL + query)
    assert response.status_code == 200
    assert len(row_names(response)) > 0
    assert len(large) == len(small)


def test_platform_admin_actions_are_audited_under_their_name(root, root_client, connector_a):
    """From the drill-down, a super admin's pause/resume goes through the organisation's own
    services: the audit log names the super admin, in the connector's organisation."""
    from audit.models import AuditEvent

    for action in ("pause", "resume"):
        response = root_client.post(reverse(f"connectors:{action}", args=["acme", connector_a.pk]))
        assert response.status_code == 302
        assert response["Location"] == reverse("connectors:detail", args=["acme", connector_a.pk])
    events = AuditEvent.objects.filter(connector=connector_a).order_by("at", "id")
    assert [(e.action, e.actor, e.organisation.slug) for e in events] == [
        (AuditEvent.Action.PAUSED, root, "acme"),
        (AuditEvent.Action.RESUMED, root, "acme"),
    ]
    audit = root_client.get(reverse("connectors:audit", args=["acme", connector_a.pk]))
    assert root.display_name in audit.text

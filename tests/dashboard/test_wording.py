"""What a user reads right after a sync or a connection test: times, durations, and the way
from a job's failed or conflicting records to those rows."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from diagnostics.models import ConnectionTest

from .conftest import make_job


def test_a_sync_that_just_finished_is_now_or_seconds_ago_not_0_minutes_ago(
    alice_client, root_client, connector_a
):
    now = timezone.now()
    make_job(connector_a, started_at=now - timedelta(seconds=20), finished_at=now)
    pages = [
        alice_client.get(reverse("connectors:list", args=["acme"])).text,
        alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])).text,
        root_client.get(reverse("platform_admin:connectors")).text,
    ]
    for html in pages:
        # humanize's naturaltime: "now" in the first second, then "5 seconds ago".
        assert re.search(r">(now|a second ago|\d+\xa0seconds ago)</time>", html)
        assert "0\xa0minutes ago" not in html and "0 minutes ago" not in html


def test_an_older_sync_still_says_how_long_ago(alice_client, connector_a):
    finished = timezone.now() - timedelta(hours=2, minutes=5)
    make_job(connector_a, started_at=finished - timedelta(minutes=1), finished_at=finished)
    html = alice_client.get(reverse("connectors:list", args=["acme"])).text
    assert "2\xa0hours ago" in html


def test_a_fast_connection_test_took_under_a_tenth_of_a_second(alice_client, alice, connector_a):
    now = timezone.now()
    ConnectionTest.objects.create(
        connector=connector_a,
        requested_by=alice,
        status=ConnectionTest.Status.PASSED,
        steps=[],
        started_at=now - timedelta(milliseconds=9),
        finished_at=now,
    )
    html = alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])).text
    summary = re.search(r'<p class="connection-test-summary">(.*?)</p>', html, re.S).group(1)
    assert "took under 0.1s" in summary
    assert re.search(r"\((now|a second ago|\d+\xa0seconds ago)\)", summary)
    assert "0.0 s" not in summary


def test_job_card_links_to_its_failed_and_conflicting_records(alice_client, connector_a):
    job = make_job(
        connector_a,
        stats={
            "article": {"total": 5, "processed": 5, "created": 2, "failed": 2, "conflicts": 1},
            "member": {"total": 3, "processed": 3, "created": 2, "failed": 1},
        },
    )
    url = reverse("syncjobs:detail", args=["acme", connector_a.pk, job.pk])
    html = alice_client.get(url).text
    assert (
        # Push failures are their own counter: the failed records' link leaves them out.
        f'<a href="{url}?status=FAILED&amp;not_operation=SYNC#log-heading" class="text-danger">'
        "3 records failed</a>" in (html)
    )
    assert f'<a href="{url}?status=CONFLICT#log-heading" class="text-conflict">1 conflict</a>' in (
        html
    )
    # The polled card carries the same links, from job.stats alone.
    fragment = alice_client.get(
        reverse("syncjobs:status", args=["acme", connector_a.pk, job.pk]),
        HTTP_HX_REQUEST="true",
    ).text
    assert "3 records failed" in fragment and "1 conflict" in fragment


def test_job_card_links_to_the_pushes_wordpress_refused(alice_client, connector_a):
    job = make_job(
        connector_a,
        stats={"event": {"total": 2, "processed": 2, "skipped": 1, "push_failed": 2}},
    )
    url = reverse("syncjobs:detail", args=["acme", connector_a.pk, job.pk])
    html = alice_client.get(url).text
    link = f'<a href="{url}?operation=SYNC&amp;status=FAILED#log-heading" class="text-danger">'
    assert link + "2 pushes refused by WordPress</a>" in html
    assert "records failed" not in html and "conflict" not in html.split("record-problems")[1][:300]


def test_job_card_of_a_clean_job_has_no_problem_links(alice_client, connector_a):
    job = make_job(connector_a, stats={"article": {"total": 2, "processed": 2, "created": 2}})
    html = alice_client.get(reverse("syncjobs:detail", args=["acme", connector_a.pk, job.pk])).text
    assert "record-problems" not in html


def test_overview_counters_hide_pushed_on_an_import_only_connector(alice_client, connector_a):
    make_job(connector_a, stats={"article": {"total": 2, "processed": 2, "created": 2}})
    url = reverse("connectors:detail", args=["acme", connector_a.pk])
    counters = alice_client.get(url).text.split('id="counters"')[1]
    assert '<th scope="col">Archived</th>' in counters
    assert "Pushed" not in counters
    connector_a.sync_direction = "two_way"
    connector_a.save(update_fields=["sync_direction"])
    counters = alice_client.get(url).text.split('id="counters"')[1]
    assert '<th scope="col">Pushed</th>' in counters


def test_job_card_shows_pushed_only_where_pushing_happens(
    alice_client, connector_a, django_assert_max_num_queries
):
    stats = {"article": {"total": 2, "processed": 2, "created": 2}}
    job = make_job(connector_a, status="RUNNING", stats=stats)
    status = reverse("syncjobs:status", args=["acme", connector_a.pk, job.pk])
    page = reverse("syncjobs:detail", args=["acme", connector_a.pk, job.pk])
    alice_client.get(status, HTTP_HX_REQUEST="true")
    for url in (page, status):
        html = alice_client.get(url, HTTP_HX_REQUEST="true" if url == status else None).text
        assert '<th scope="col">Archived</th></tr>' in html and "Pushed" not in html
    connector_a.sync_direction = "two_way"
    connector_a.save(update_fields=["sync_direction"])
    # Still the poll's three queries: the connector's direction comes with the job.
    with django_assert_max_num_queries(3):
        html = alice_client.get(status, HTTP_HX_REQUEST="true").text
    assert '<th scope="col">Pushed</th>' in html


@pytest.mark.parametrize(
    ("url_name", "here"),
    [
        ("diagnostics:connection_test", "Connection test"),
        ("diagnostics:mapping", "Mapping Diagnostics"),
        ("connectors:delete", "Delete"),
    ],
)
def test_pages_off_the_tabs_say_where_you_are(alice_client, connector_a, url_name, here):
    """No tab is selected on these pages: the breadcrumb names the page and links back to
    the connector, instead of ending on the connector's name as if this were its Overview."""
    html = alice_client.get(reverse(url_name, args=["acme", connector_a.pk])).text
    crumbs = re.search(r'<nav class="breadcrumb".*?</nav>', html, re.S).group(0)
    assert f'<a href="{connector_a.get_absolute_url()}">{connector_a.name}</a>' in crumbs
    assert f'<span aria-current="page">{here}</span>' in crumbs

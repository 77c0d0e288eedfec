"""The job page: live status fragment, keyset-paginated log with filters, CSV."""

import csv
import io
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from syncjobs.models import SyncJob, SyncLogEntry

from .conftest import make_job, make_log

POLL = 'hx-trigger="every 4s"'


def job_url(job, name="syncjobs:detail"):
    return reverse(name, args=["acme", job.connector_id, job.pk])


@pytest.mark.parametrize("status", ["PENDING", "RUNNING"])
def test_unfinished_job_polls(alice_client, connector_a, status):
    job = make_job(connector_a, status=status)
    page = alice_client.get(job_url(job)).text
    assert POLL in page
    assert f'hx-get="{job_url(job, "syncjobs:status")}"' in page
    fragment = alice_client.get(job_url(job, "syncjobs:status"), HTTP_HX_REQUEST="true")
    assert POLL in fragment.text
    assert "HX-Trigger" not in fragment


@pytest.mark.parametrize("status", ["COMPLETED", "FAILED", "CANCELLED"])
def test_finished_job_does_not_poll(alice_client, connector_a, status):
    job = make_job(connector_a, status=status, error="Boom: WordPress said 500")
    page = alice_client.get(job_url(job)).text
    assert POLL not in page
    fragment = alice_client.get(job_url(job, "syncjobs:status"), HTTP_HX_REQUEST="true")
    assert POLL not in fragment.text
    # The last poll tells the page to refresh the log table once.
    assert fragment["HX-Trigger"] == "job-finished"
    assert ("Boom: WordPress said 500" in page) == (status in ("FAILED", "CANCELLED"))


def test_status_fragment_is_a_fragment(alice_client, connector_a):
    job = make_job(connector_a, status="RUNNING")
    fragment = alice_client.get(job_url(job, "syncjobs:status"), HTTP_HX_REQUEST="true").text
    assert fragment.lstrip().startswith('<section id="job-status"')
    assert "<html" not in fragment and "Record log" not in fragment
    # Without htmx the same URL is the whole page (a bookmark or no-JS user gets something useful).
    full = alice_client.get(job_url(job, "syncjobs:status")).text
    assert "<html" in full and "Record log" in full


def test_status_shows_progress_from_stats(alice_client, connector_a):
    job = make_job(
        connector_a,
        status="RUNNING",
        current_entity_type="member",
        stats={
            "article": {"total": 200, "processed": 200, "created": 150, "updated": 50},
            "member": {"total": 300, "processed": 100, "created": 90, "failed": 10},
        },
    )
    fragment = alice_client.get(job_url(job, "syncjobs:status"), HTTP_HX_REQUEST="true").text
    assert '<progress max="500" value="300"' in fragment
    assert "300 / 500 records (60%)" in fragment
    assert '<progress max="300" value="100"' in fragment
    assert "records/s" in fragment
    assert "Cancel sync" in fragment


def test_progress_is_an_estimate_until_every_type_is_counted(alice_client, connector_a):
    """The engine learns a type's total when it reaches it: while later types wait, the sum
    of totals is not the job's size, so the page must not claim 100%."""
    job = make_job(
        connector_a,
        status="RUNNING",
        current_entity_type="member",
        stats={
            "article": {"total": 30, "processed": 30, "created": 30},
            "member": {"total": 40, "processed": 10, "created": 10},
            "event": {"total": 0, "processed": 0},
        },
    )
    fragment = alice_client.get(job_url(job, "syncjobs:status"), HTTP_HX_REQUEST="true").text
    assert "40 records so far · 2 of 3 types started (about 42%)" in fragment
    assert '<progress max="100" value="42" aria-label="Entity types synced"' in fragment
    assert "(100%)" not in fragment and "40 / 70 records" not in fragment
    event_row = fragment[fragment.index('<th scope="row">Event') :].split("</tr>")[0]
    assert "waiting" in event_row and "0 / 0" not in event_row
    overview = alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])).text
    assert "2 of 3 types started · now: members" in overview

    # The last type started: the totals are the job's size again.
    SyncJob.objects.filter(pk=job.pk).update(current_entity_type="event")
    fragment = alice_client.get(job_url(job, "syncjobs:status"), HTTP_HX_REQUEST="true").text
    assert "40 / 70 records (57%)" in fragment and "waiting" not in fragment

    # Cancelled during members: events were never reached, and the page says so.
    SyncJob.objects.filter(pk=job.pk).update(status="CANCELLED", current_entity_type="member")
    fragment = alice_client.get(job_url(job, "syncjobs:status"), HTTP_HX_REQUEST="true").text
    assert "40 records processed before it stopped · 2 of 3 types reached" in fragment
    assert '<progress max="100" value="42"' in fragment and "(100%)" not in fragment
    event_row = fragment[fragment.index('<th scope="row">Event') :].split("</tr>")[0]
    assert "not reached" in event_row

    # A completed job's figures are final: a type with nothing to sync is simply 0 / 0.
    SyncJob.objects.filter(pk=job.pk).update(
        status="COMPLETED",
        current_entity_type="member",
        stats={
            "article": {"total": 30, "processed": 30},
            "member": {"total": 40, "processed": 40},
            "event": {"total": 0, "processed": 0},
        },
    )
    fragment = alice_client.get(job_url(job, "syncjobs:status"), HTTP_HX_REQUEST="true").text
    assert "70 / 70 records (100%)" in fragment and "reached" not in fragment

    # Before the engine has published anything, the page says what it is waiting for.
    pending = make_job(connector_a, status="PENDING")
    page = alice_client.get(job_url(pending)).text
    assert "Queued, waiting for a worker…" in page and "types started" not in page


# The polled status card's SQL: the session, its user, and the job with its connector and
# organisation in one join scoped to the user's organisations. Polled every 4 s by every
# open job page, so a query more here is ~25 more a second at 100 open pages.
STATUS_QUERIES = 3


@pytest.mark.parametrize("who", ["alice", "root"])
def test_status_endpoint_is_cheap(
    who, alice, alice_client, root_client, connector_a, django_assert_max_num_queries
):
    client = {"alice": alice_client, "root": root_client}[who]
    job = make_job(
        connector_a,
        status="RUNNING",
        triggered_by=alice,
        stats={"article": {"total": 9, "processed": 3}, "member": {"total": 4, "processed": 0}},
    )
    make_log(job, 500)
    url = job_url(job, "syncjobs:status")
    client.get(url, HTTP_HX_REQUEST="true")  # first request of the session: CSRF cookie etc.
    with django_assert_max_num_queries(STATUS_QUERIES):
        fragment = client.get(url, HTTP_HX_REQUEST="true")
    # Everything the card shows came out of those queries: status, who triggered it, the
    # progress per entity type, the cancel form, the poll.
    assert fragment.status_code == 200
    assert "Running" in fragment.text and "Manual by" in fragment.text
    assert "3 / 9" in fragment.text and "0 / 4" in fragment.text
    assert POLL in fragment.text and "Cancel sync" in fragment.text
    with CaptureQueriesContext(connection) as queries:
        client.get(url, HTTP_HX_REQUEST="true")
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "syncjobs_synclogentry" not in sql  # never counts or reads log rows


def test_status_endpoint_query_count_does_not_grow_with_the_job(
    alice_client, connector_a, django_assert_max_num_queries
):
    """A finished job with every entity type and every counter: still the same queries."""
    job = make_job(
        connector_a,
        status="COMPLETED",
        stats={
            et: {"total": 7, "processed": 7, "created": 5, "failed": 2, "pushed": 1}
            for et in ("article", "member", "event", "company", "image")
        },
    )
    make_log(job, 2000)
    with django_assert_max_num_queries(STATUS_QUERIES):
        fragment = alice_client.get(job_url(job, "syncjobs:status"), HTTP_HX_REQUEST="true")
    assert POLL not in fragment.text and fragment["HX-Trigger"] == "job-finished"


def test_job_urls_must_agree_on_organisation_connector_and_job(
    alice_client, root_client, org_a, connector_a, connector_b
):
    """The job is looked up in one query scoped by the URL's organisation and connector and
    the user's memberships: any part that does not match is a 404, for every job URL."""
    from tests.conftest import make_connector

    other_connector_a = make_connector(org_a, name="Second site")
    job = make_job(connector_a, status="RUNNING")
    job_b = make_job(connector_b, status="RUNNING")
    names = ["syncjobs:detail", "syncjobs:status", "syncjobs:log_csv"]
    for name in names:
        ok = reverse(name, args=["acme", connector_a.pk, job.pk])
        assert alice_client.get(ok, HTTP_HX_REQUEST="true").status_code == 200, ok
        assert root_client.get(ok, HTTP_HX_REQUEST="true").status_code == 200, ok
        wrong = [
            # the job of another connector of the same organisation
            reverse(name, args=["acme", other_connector_a.pk, job.pk]),
            # another organisation's slug in front of alice's connector and job
            reverse(name, args=[connector_b.organisation.slug, connector_a.pk, job.pk]),
            # another organisation's job and connector under alice's organisation
            reverse(name, args=["acme", connector_b.pk, job_b.pk]),
            reverse(name, args=[connector_b.organisation.slug, connector_b.pk, job_b.pk]),
            reverse(name, args=["no-such-org", connector_a.pk, job.pk]),
            reverse(name, args=["acme", connector_a.pk, 10**12]),
        ]
        for url in wrong:
            assert alice_client.get(url, HTTP_HX_REQUEST="true").status_code == 404, url
    # The platform admin sees the other organisation's job at its own URL, not under acme.
    url_b = reverse(
        "syncjobs:status", args=[connector_b.organisation.slug, connector_b.pk, job_b.pk]
    )
    assert root_client.get(url_b, HTTP_HX_REQUEST="true").status_code == 200
    assert (
        root_client.get(
            reverse("syncjobs:status", args=["acme", connector_b.pk, job_b.pk]),
            HTTP_HX_REQUEST="true",
        ).status_code
        == 404
    )
    cancel = reverse("syncjobs:cancel", args=["acme", other_connector_a.pk, job.pk])
    assert alice_client.post(cancel).status_code == 404
    job.refresh_from_db()
    assert job.status == "RUNNING" and job.cancel_requested_at is None


def test_connector_status_card_polls_only_while_a_job_is_active(
    alice_client, connector_a, django_assert_max_num_queries
):
    overview = reverse("connectors:detail", args=["acme", connector_a.pk])
    status = reverse("connectors:status", args=["acme", connector_a.pk])
    job = make_job(connector_a, status="RUNNING", stats={"article": {"total": 4, "processed": 1}})
    page = alice_client.get(overview).text
    assert POLL in page and f'hx-get="{status}"' in page
    with django_assert_max_num_queries(7):
        fragment = alice_client.get(status, HTTP_HX_REQUEST="true")
    assert fragment.text.lstrip().startswith('<section id="status-card"')
    assert POLL in fragment.text and '<progress max="4" value="1"' in fragment.text

    SyncJob.objects.filter(pk=job.pk).update(status="COMPLETED")
    fragment = alice_client.get(status, HTTP_HX_REQUEST="true")
    assert POLL not in fragment.text
    assert fragment["HX-Trigger"] == "job-finished"
    assert POLL not in alice_client.get(overview).text


def test_log_table_fragment_for_htmx(alice_client, connector_a):
    job = make_job(connector_a)
    make_log(job, 3)
    fragment = alice_client.get(job_url(job), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="job-log").text
    assert fragment.lstrip().startswith('<div id="job-log"')
    assert 'hx-trigger="job-finished from:body"' in fragment
    assert "<html" not in fragment


def collect_pages(client, url, direction="before"):
    """Walk Older links from the first page; return the external ids page by page."""
    import re

    pages = []
    next_url = url
    while next_url:
        html = client.get(next_url).text
        pages.append(re.findall(r'<td class="mono">(\d+)</td>', html))
        older = re.search(r'rel="next" href="([^"]+)"', html)
        next_url = older.group(1).replace("&amp;", "&") if older else None
        if next_url and next_url.startswith("?"):
            next_url = url.split("?")[0] + next_url
    return pages


def test_keyset_pagination_walks_every_row_once(alice_client, connector_a):
    job = make_job(connector_a)
    make_log(job, 120, start=1)  # external ids 1..120, ids ascending with them
    pages = collect_pages(alice_client, job_url(job))
    assert [len(p) for p in pages] == [50, 50, 20]
    flat = [int(x) for page in pages for x in page]
    assert flat == list(range(120, 0, -1))  # newest first, no gaps, no repeats

    # Newer from the middle page comes back to the first page exactly.
    second = SyncLogEntry.objects.filter(job=job).order_by("-id")[50]
    html = alice_client.get(job_url(job) + f"?before={second.id + 1}").text
    assert 'rel="prev"' in html
    newest_shown = SyncLogEntry.objects.get(pk=second.id)
    newer = alice_client.get(job_url(job) + f"?after={newest_shown.id}").text
    import re

    ids = re.findall(r'<td class="mono">(\d+)</td>', newer)
    assert ids == [str(n) for n in range(120, 70, -1)]
    assert 'rel="prev"' not in newer  # that is the newest page: no Newer link


def test_log_pagination_never_counts_or_offsets(alice_client, connector_a):
    job = make_job(connector_a)
    make_log(job, 60)
    last = SyncLogEntry.objects.filter(job=job).order_by("id")[10]
    with CaptureQueriesContext(connection) as queries:
        alice_client.get(job_url(job) + f"?before={last.id}&status=SUCCESS")
    log_sql = [q["sql"] for q in queries.captured_queries if "synclogentry" in q["sql"]]
    assert log_sql
    for sql in log_sql:
        assert "COUNT(" not in sql.upper() and "OFFSET" not in sql.upper(), sql


def test_log_filters_and_search(alice_client, connector_a):
    job = make_job(connector_a)
    make_log(job, 5, start=100, entity_type="article")
    make_log(job, 3, start=200, entity_type="member", operation="UPDATE")
    make_log(job, 2, start=300, entity_type="event", status="FAILED", error="Missing start date")
    target = uuid.uuid4()
    SyncLogEntry.objects.filter(job=job, external_id="201").update(internal_id=target)

    def ids(query):
        import re

        html = alice_client.get(job_url(job) + query).text
        return sorted(int(x) for x in re.findall(r'<td class="mono">(\d+)</td>', html))

    assert ids("?entity_type=member") == [200, 201, 202]
    assert ids("?operation=UPDATE") == [200, 201, 202]
    assert ids("?status=FAILED") == [300, 301]
    assert ids("?status=FAILED&entity_type=article") == []
    assert ids("?q=104") == [104]
    assert ids(f"?q={target}") == [201]
    assert ids("?entity_type=bogus") == [*list(range(100, 105)), 200, 201, 202, 300, 301]
    html = alice_client.get(job_url(job) + "?status=FAILED").text
    assert "Missing start date" in html
    assert "No log rows match these filters." in alice_client.get(job_url(job) + "?q=nope").text
    # Internal IDs link to the platform record page.
    html = alice_client.get(job_url(job) + "?q=201").text
    assert reverse("records:detail", args=["acme", "member", target]) in html


def test_csv_download_streams_the_filtered_log(alice_client, connector_a):
    job = make_job(connector_a)
    make_log(job, 3, start=1)
    make_log(job, 2, start=50, status="FAILED", error='Bad "date", line 2')
    response = alice_client.get(job_url(job, "syncjobs:log_csv") + "?status=FAILED")
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert f"job{job.pk}-log.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["log_id", "entity_type", "external_id"]
    assert [r[2] for r in rows[1:]] == ["51", "50"]
    assert rows[1][6] == 'Bad "date", line 2'
    everything = alice_client.get(job_url(job, "syncjobs:log_csv"))
    assert len(list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode())))) == 6


def test_job_page_shows_who_triggered(alice_client, alice, connector_a):
    job = make_job(connector_a, triggered_by=alice)
    assert "Manual by Alice" in alice_client.get(job_url(job)).text


def test_a_running_job_shows_its_rate_so_far_and_a_finished_one_its_rate(alice_client, connector_a):
    rate = {"records": 50, "requests": 10, "seconds": 5.0, "limit_per_minute": None}
    running = make_job(connector_a, status="RUNNING", rate=rate)
    fragment = alice_client.get(job_url(running, "syncjobs:status"), HTTP_HX_REQUEST="true")
    assert "10 records/s · 120 requests/min so far" in fragment.text
    finished = make_job(connector_a, rate=rate)
    fragment = alice_client.get(job_url(finished, "syncjobs:status"), HTTP_HX_REQUEST="true")
    assert "10 records/s · 120 requests/min<" in fragment.text

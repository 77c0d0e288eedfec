"""Overview statistics, list, history, activity and audit pages; the key never in HTML."""

import re
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record
from connectors.models import Connector
from records.models import Article, Event, Member

from .conftest import KEY, make_job, make_log


def test_list_shows_status_last_and_next_sync(alice_client, connector_a, org_a):
    from tests.conftest import make_connector

    paused = make_connector(org_a, name="Paused one", status="PAUSED")
    Connector.objects.filter(pk=connector_a.pk).update(
        next_sync_at=timezone.now() + timedelta(minutes=30)
    )
    make_job(connector_a, status="FAILED")
    make_job(paused, status="RUNNING")
    html = alice_client.get(reverse("connectors:list", args=["acme"])).text
    assert 'class="badge badge-failed">Failed' in html
    assert "Sync running" in html
    assert "data-countdown" in html and "Paused</span>" in html
    assert reverse("connectors:create", args=["acme"]) in html
    assert 'data-href="' + connector_a.get_absolute_url() in html


def test_overview_statistics(alice_client, connector_a, org_a):
    now = timezone.now()
    for i in range(3):
        Article.objects.create(
            organisation=org_a, connector=connector_a, external_id=str(i), title="a"
        )
    Article.objects.create(
        organisation=org_a, connector=connector_a, external_id="old", title="gone", archived_at=now
    )
    Member.objects.create(organisation=org_a, connector=connector_a, external_id="m1")
    Event.objects.create(organisation=org_a, external_id="e1", title="elsewhere", starts_at=now)
    for status in ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED"]:
        make_job(connector_a, status=status, stats={"article": {"created": 3, "updated": 1}})
    html = alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])).text
    stats = re.sub(r"\s+", " ", html)
    assert '<span class="stat-value">3</span><span class="stat-label">Articles</span>' in stats
    assert '<span class="stat-value">1</span><span class="stat-label">Member</span>' in stats
    assert '<span class="stat-value">0</span><span class="stat-label">Events</span>' in stats
    assert "4 total" in stats
    assert (
        '<span class="stat-value">75%</span><span class="stat-label">Jobs completed</span>' in stats
    )
    assert (
        '<span class="stat-value">2m 00s</span><span class="stat-label">Average duration</span>'
        in stats
    )
    assert (
        '<th scope="row" class="stack-title">Article</th>'
        '<td class="counter" data-label="Created">3</td>'
        '<td class="counter" data-label="Updated">1</td>'
    ) in stats


def test_overview_countdown_and_buttons(alice_client, connector_a):
    when = timezone.now() + timedelta(minutes=10)
    Connector.objects.filter(pk=connector_a.pk).update(next_sync_at=when)
    html = alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])).text
    assert re.search(r'<time datetime="[^"]+" data-countdown', html)
    assert "Run Full Sync" in html and "Run Initial Import" in html
    assert "Cancel sync" not in html
    assert "Pause Sync" in html and "Delete…" in html
    assert 'aria-current="page">Overview' in html
    job = make_job(connector_a, status="RUNNING")
    html = alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])).text
    assert reverse("syncjobs:cancel", args=["acme", connector_a.pk, job.pk]) in html
    assert "disabled" in html


def test_statistics_fragment_for_htmx(alice_client, connector_a):
    url = reverse("connectors:detail", args=["acme", connector_a.pk])
    fragment = alice_client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="statistics").text
    assert fragment.lstrip().startswith('<section id="statistics"')
    assert "<html" not in fragment and "Run Full Sync" not in fragment
    # Any other htmx request (a boosted link, say) gets the whole page.
    assert "<html" in alice_client.get(url, HTTP_HX_REQUEST="true").text
    assert 'hx-trigger="job-finished from:body"' in fragment


JOB_LINK = r'Full sync <span class="nowrap">#(\d+)</span></a>'


def test_history_lists_every_job_newest_first(alice_client, alice, connector_a):
    jobs = [
        make_job(connector_a, created_at=timezone.now() - timedelta(hours=30 - i))
        for i in range(30)
    ]
    make_job(connector_a, status="RUNNING", triggered_by=alice)
    url = reverse("connectors:history", args=["acme", connector_a.pk])
    html = alice_client.get(url).text
    found = [int(x) for x in re.findall(JOB_LINK, html)]
    assert len(found) == 25 and found[1:3] == [jobs[-1].pk, jobs[-2].pk]
    assert "by Alice" in html and "31 jobs" in html
    page2 = alice_client.get(url + "?page=2").text
    assert [int(x) for x in re.findall(JOB_LINK, page2)] == [j.pk for j in reversed(jobs[:6])]


def test_activity_feed_interleaves_jobs_and_log_rows(alice_client, connector_a, org_a):
    from tests.conftest import make_connector

    other = make_connector(org_a, name="Other")
    job = make_job(connector_a)
    make_log(job, 3, start=1, processed_at=job.started_at + timedelta(seconds=30))
    make_log(make_job(other), 2, start=900)
    html = alice_client.get(reverse("connectors:activity", args=["acme", connector_a.pk])).text
    assert "Full sync finished" in html and "Full sync started" in html
    assert (
        html.index("Full sync finished") < html.index("#3</span>") < html.index("Full sync started")
    )
    assert "#900" not in html


def test_activity_keyset_pages(alice_client, connector_a):
    job = make_job(connector_a)
    make_log(job, 70, start=1)
    url = reverse("connectors:activity", args=["acme", connector_a.pk])
    first = alice_client.get(url).text
    assert first.count('class="mono">#') == 50
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = alice_client.get(url + older).text
    shown = [int(x) for x in re.findall(r'class="mono">#(\d+)</span>', second)]
    assert shown == list(range(20, 0, -1))


def test_audit_log_lists_every_action(alice_client, alice, connector_a):
    record(connector_a, AuditEvent.Action.CREATED, actor=alice, changes={"name": connector_a.name})
    record(
        connector_a,
        AuditEvent.Action.SYNC_TRIGGERED,
        actor=alice,
        changes={"kind": "FULL", "job": 7},
    )
    record(
        connector_a,
        AuditEvent.Action.SYNC_CANCELLED,
        actor=alice,
        changes={"kind": "FULL", "job": 7},
    )
    record(
        connector_a,
        AuditEvent.Action.UPDATED,
        actor=alice,
        changes={"frequency": {"before": "1h", "after": "15m"}},
    )
    html = alice_client.get(reverse("connectors:audit", args=["acme", connector_a.pk])).text
    assert "created the connector" in html
    assert "triggered a full sync" in html and "job #7" in html
    assert "cancelled" in html
    # The diff names fields and values as the Settings form does, not by column and code.
    assert (
        '<th scope="row">Sync frequency</th><td class="diff-before">Hourly</td>'
        '<td class="diff-after">Every 15 minutes</td>' in html
    )


def test_organisation_audit_log_keeps_deleted_connectors(
    alice_client, alice, bob_client, org_a, connector_a
):
    """A deleted connector has no Audit Log tab any more: the organisation's Audit Log still
    shows who deleted it, and what else happened to it before."""
    from connectors import services

    other = services.create_connector(
        org_a,
        user=alice,
        name="Old blog",
        site_url="https://old.acme.example",
        api_key="old-blog-sync-key-0123456789",
        entity_types=["article"],
        frequency="1d",
    )
    services.pause_connector(connector_a, user=alice)
    job = make_job(other)
    record(
        other,
        AuditEvent.Action.SYNC_TRIGGERED,
        actor=alice,
        changes={"kind": "FULL", "job": job.pk},
    )
    services.delete_connector(other, user=alice)
    type(connector_a).objects.filter(pk=connector_a.pk).update(name="Acme renamed")

    url = reverse("connectors:organisation_audit", args=["acme"])
    assert f'href="{url}"' in alice_client.get(reverse("connectors:list", args=["acme"])).text
    html = alice_client.get(url).text
    events = html.split('<li class="audit-event')[1:]
    assert len(events) == 4
    assert "audit-deleted" in events[0] and "deleted the connector" in events[0]
    assert 'Old blog <span class="muted">(deleted)</span>' in events[0]
    assert "https://old.acme.example" in events[0]
    # The job it ran is gone with it: no dead link.
    assert "triggered a full sync" in events[1] and "/jobs/" not in events[1]
    connector_audit = reverse("connectors:audit", args=["acme", connector_a.pk])
    assert "paused syncing" in events[2] and f'href="{connector_audit}"' in events[2]
    assert f'href="{connector_audit}">Acme renamed</a>' in events[2]  # its current name
    assert "created the connector" in events[3] and "Old blog" in events[3]
    assert bob_client.get(url).status_code == 404


def test_the_key_never_appears_in_any_page(alice_client, root_client, connector_a, org_a):
    job = make_job(connector_a, status="RUNNING", stats={"article": {"total": 1, "processed": 0}})
    make_log(job, 2)
    record(
        connector_a, AuditEvent.Action.UPDATED, changes={"api_key": {"before": "•", "after": "•"}}
    )
    article = Article.objects.create(
        organisation=org_a, connector=connector_a, external_id="1", title="t"
    )
    c = connector_a.pk
    urls = [
        reverse("connectors:list", args=["acme"]),
        reverse("connectors:detail", args=["acme", c]),
        reverse("connectors:status", args=["acme", c]),
        reverse("connectors:history", args=["acme", c]),
        reverse("connectors:activity", args=["acme", c]),
        reverse("connectors:audit", args=["acme", c]),
        reverse("connectors:settings", args=["acme", c]),
        reverse("connectors:delete", args=["acme", c]),
        reverse("syncjobs:detail", args=["acme", c, job.pk]),
        reverse("syncjobs:status", args=["acme", c, job.pk]),
        reverse("syncjobs:log_csv", args=["acme", c, job.pk]),
        reverse("records:detail", args=["acme", "article", article.pk]),
        reverse("platform_admin:connectors"),
    ]
    encrypted = Connector.objects.get(pk=c).api_key_encrypted
    for client in (alice_client, root_client):
        for url in urls:
            for htmx in (False, True):
                extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
                response = client.get(url, **extra)
                if response.status_code != 200:
                    continue
                body = (
                    b"".join(response.streaming_content) if response.streaming else response.content
                ).decode()
                assert KEY not in body, url
                assert encrypted not in body, url


STAMP_UTC = re.compile(r">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>")


def test_times_say_their_zone_on_every_page_that_lists_them(alice_client, alice, connector_a):
    # "2026-12-04 08:35:39" alone left an admin guessing whose clock that is; the connection
    # test already said UTC, now the job, its log, the history, activity and audit log do too.
    job = make_job(connector_a)
    make_log(job, 2)
    record(connector_a, AuditEvent.Action.PAUSED, actor=alice)
    args = ["acme", connector_a.pk]
    pages = {
        "job": reverse("syncjobs:detail", args=[*args, job.pk]),
        "history": reverse("connectors:history", args=args),
        "activity": reverse("connectors:activity", args=args),
        "audit": reverse("connectors:audit", args=args),
    }
    for name, url in pages.items():
        html = alice_client.get(url).text
        assert STAMP_UTC.search(html), name
    # the job page: queued, started, and each log row
    assert len(STAMP_UTC.findall(alice_client.get(pages["job"]).text)) >= 4

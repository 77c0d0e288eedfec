"""Every counter of the job page links to exactly the log rows it counts."""

import re

from django.urls import reverse

from connectors.models import Connector

from .conftest import make_job, make_log

LINK = re.compile(r'<a href="([^"#]+\?[^"#]+)#log-heading"[^>]*>(?:<strong[^>]*>)?\(?(\d+)')


def test_each_counter_links_to_the_rows_it_counts(alice_client, connector_a):
    Connector.objects.filter(pk=connector_a.pk).update(sync_direction=Connector.Direction.TWO_WAY)
    job = make_job(
        connector_a,
        stats={
            "article": {
                "total": 14,
                "processed": 14,
                "created": 3,
                "updated": 2,
                "skipped": 4,
                "conflicts": 1,
                "failed": 2,
                "archived": 1,
                "pushed": 1,
                "push_failed": 1,
            },
            "member": {"total": 2, "processed": 2, "created": 2},
        },
    )
    make_log(job, 3, start=1, operation="CREATE")
    make_log(job, 2, start=10, operation="UPDATE")
    make_log(job, 4, start=20, operation="SKIP", status="SKIPPED")
    make_log(job, 1, start=30, operation="UPDATE", status="CONFLICT")
    make_log(job, 1, start=40, operation="CREATE", status="FAILED", error="Bad title")
    make_log(job, 1, start=41, operation="UPDATE", status="FAILED", error="Bad date")
    make_log(job, 1, start=50, operation="ARCHIVE")
    make_log(job, 1, start=60, operation="SYNC")
    make_log(job, 1, start=70, operation="SYNC", status="FAILED", error="Refused")
    make_log(job, 2, start=80, entity_type="member", operation="CREATE")
    page = alice_client.get(job.get_absolute_url()).text
    card = page[page.index('id="job-status"') : page.index('id="log-heading"')]
    links = LINK.findall(card)
    # The per-type cells (8 article counters, push failures included, 1 member) and the summary
    # line's three (failed, conflicts, push failures).
    assert len(links) == 12, links
    base = reverse("syncjobs:detail", args=["acme", connector_a.pk, job.pk])
    for url, count in links:
        assert url.startswith(base)
        log = alice_client.get(url.replace("&amp;", "&")).text
        rows = re.findall(r'<td class="log-type">', log)
        assert len(rows) == int(count), (url, count)
    assert "among the pushed rows" in card  # the two-way conflict a push settled

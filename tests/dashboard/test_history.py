"""Sync History: every job's record counters, from real syncs against the simulator."""

import re
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from tests.conftest import make_connector

from .conftest import make_job
from .sync_history import run_history_syncs

COUNTERS = ("Processed", "Created", "Updated", "Skipped", "Conflicts", "Archived", "Failed")


def history_rows(html):
    """{job id: {column label: cell text}} of the history table's counter cells."""
    rows = {}
    for row in re.findall(r"<tr class=\"table-clickable[^\"]*\".*?</tr>", html, re.S):
        job_id = int(re.search(r"#(\d+)</span></a>", row).group(1))
        cells = re.findall(r'data-label="([^"]+)">(.*?)</td>', row, re.S)
        rows[job_id] = {label: re.sub(r"<[^>]+>", "", text).strip() for label, text in cells}
    return rows


def test_history_shows_every_counter_of_real_jobs(alice_client, org_a):
    connector, full, conflicts, pushes = run_history_syncs(org_a)
    # The figures the three jobs really produced (not a fixture's): the columns are only
    # worth testing if each one has something to show.
    assert full.totals()["created"] > 0 and full.totals()["failed"] > 0
    assert conflicts.totals()["conflicts"] == 1 and conflicts.totals()["archived"] == 2
    # Pushed: the platform edit made for it, and the conflict's kept platform edit.
    pushed = pushes.totals()["pushed"]
    assert pushed >= 1 and pushes.totals()["push_failed"] == 1

    html = alice_client.get(reverse("connectors:history", args=["acme", connector.pk])).text
    headers = re.findall(r'<th scope="col" class="num">(\w+)</th>', html)
    assert headers == [*COUNTERS, "Pushed"]
    rows = history_rows(html)
    assert list(rows) == [pushes.pk, conflicts.pk, full.pk]  # newest first
    for job in (full, conflicts, pushes):
        totals = job.totals()
        for label in COUNTERS:
            assert rows[job.pk][label] == str(totals.get(label.lower(), 0)), (job, label)
    assert rows[pushes.pk]["Pushed"] == f"{pushed} (1 failed)"
    assert rows[conflicts.pk]["Pushed"] == "0"
    # Counters that are zero are marked, so a phone can leave them out (the browser test).
    assert 'class="num counter zero" data-label="Archived">0<' in html


def test_history_of_an_import_only_connector_has_no_pushed_column(alice_client, org_a):
    connector = make_connector(org_a, name="Import only")
    make_job(
        connector,
        stats={"article": {"total": 3, "processed": 3, "created": 2, "conflicts": 1}},
    )
    html = alice_client.get(reverse("connectors:history", args=["acme", connector.pk])).text
    assert re.findall(r'<th scope="col" class="num">(\w+)</th>', html) == list(COUNTERS)
    assert 'data-label="Pushed"' not in html
    (row,) = history_rows(html).values()
    assert row["Conflicts"] == "1" and row["Created"] == "2" and row["Archived"] == "0"


def test_history_shows_when_each_job_started_and_how_long_it_took(alice_client, org_a):
    connector = make_connector(org_a, name="Quick site")
    started = timezone.now() - timedelta(minutes=3)
    make_job(connector, started_at=started, finished_at=started + timedelta(milliseconds=20))
    make_job(connector, started_at=started, finished_at=started + timedelta(seconds=187))
    make_job(connector, status="PENDING")
    html = alice_client.get(reverse("connectors:history", args=["acme", connector.pk])).text
    # A fast job is not "0.0s", which reads as if it did nothing.
    assert "took under 0.1s" in html and "took 3m 07s" in html and "0.0s" not in html
    assert "queued " in html  # the PENDING job has no start yet


def test_history_empty_state_spans_the_table(alice_client, org_a):
    connector = make_connector(org_a, name="Never synced")
    html = alice_client.get(reverse("connectors:history", args=["acme", connector.pk])).text
    assert '<td colspan="10" class="empty">No syncs yet.' in html

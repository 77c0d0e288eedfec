"""Activity that is not noise: unchanged records (SKIP) hidden by default behind one line,
filters by entity type, operation and status, and the organisation's feed across connectors."""

import re

from django.urls import reverse

from tests.conftest import make_connector

from .conftest import make_job, make_log

RECORD = re.compile(r'class="mono">#(\d+)</span>')


def shown(html) -> list[int]:
    return [int(x) for x in RECORD.findall(html)]


def test_skips_are_one_line_until_asked_for(alice_client, connector_a):
    job = make_job(connector_a, stats={"article": {"processed": 43, "skipped": 40}})
    make_log(job, 40, start=1, operation="SKIP", status="SKIPPED")
    make_log(job, 3, start=100, operation="UPDATE")
    url = reverse("connectors:activity", args=["acme", connector_a.pk])

    html = alice_client.get(url).text
    assert shown(html) == [102, 101, 100]
    assert f"and 40 unchanged records (skipped) in job #{job.pk}" in html
    assert "Skipped</span>" not in html

    everything = alice_client.get(url + "?skips=1").text
    assert len(shown(everything)) == 43
    assert "unchanged records (skipped)" not in everything
    # Filtering on skips shows them too.
    assert len(shown(alice_client.get(url + "?operation=SKIP").text)) == 40


def test_filters_by_entity_type_operation_and_status(alice_client, connector_a):
    job = make_job(connector_a)
    make_log(job, 2, start=1, entity_type="member", operation="CREATE")
    make_log(job, 2, start=10, entity_type="article", operation="UPDATE")
    make_log(job, 1, start=20, entity_type="article", operation="CREATE", status="FAILED")
    url = reverse("connectors:activity", args=["acme", connector_a.pk])

    assert shown(alice_client.get(url + "?entity_type=member").text) == [2, 1]
    assert shown(alice_client.get(url + "?operation=UPDATE").text) == [11, 10]
    failed = alice_client.get(url + "?status=FAILED&entity_type=article").text
    assert shown(failed) == [20]
    assert 'value="FAILED" selected' in failed  # the form shows the filter in force
    assert "No activity matches" in alice_client.get(url + "?entity_type=event").text
    # Unknown values are ignored, not an error.
    assert alice_client.get(url + "?status=NOPE&operation=%00").status_code == 200


def test_the_organisation_feed_spans_its_connectors_only(
    alice_client, bob_client, connector_a, connector_b, org_a
):
    other = make_connector(org_a, name="Acme events")
    make_log(make_job(connector_a), 1, start=1)
    make_log(make_job(other), 1, start=2)
    make_log(make_job(connector_b), 1, start=3)
    url = reverse("connectors:organisation_activity", args=["acme"])

    html = alice_client.get(url).text
    assert shown(html) == [2, 1]
    assert "Acme events" in html and connector_a.name in html
    assert "Full sync finished" in html
    assert bob_client.get(url).status_code == 404
    lists = alice_client.get(reverse("connectors:list", args=["acme"])).text
    assert f'href="{url}"' in lists

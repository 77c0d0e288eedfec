"""The platform's WordPress client (connectors/wordpress/client.py) against the real plugin."""

from datetime import UTC, datetime, timedelta

import pytest

from connectors.wordpress import contract
from connectors.wordpress.client import WordPressClient
from connectors.wordpress.errors import (
    AuthenticationFailed,
    BadRequest,
    RecordNotFound,
    SyncDisabled,
    WriteConflict,
)
from connectors.wordpress.pacing import Limit

pytestmark = pytest.mark.wordpress


@pytest.fixture
def client(real_wp):
    with WordPressClient(real_wp.url, real_wp.key, allow_private=True) as wp_client:
        yield wp_client


def test_ping_and_rest_index(client):
    ping = client.ping()
    assert ping["contract_version"] == 1
    assert ping["entity_types"] == list(contract.ENTITY_TYPES)
    index = client.get_rest_index()
    assert contract.REST_NAMESPACE in index["namespaces"]


def test_wrong_key_and_switched_off_sync_are_typed_errors(real_wp, wp_option):
    with WordPressClient(real_wp.url, "not-the-key-" + "0" * 30, allow_private=True) as wrong:
        with pytest.raises(AuthenticationFailed) as excinfo:
            wrong.ping()
        assert excinfo.value.code == "association_sync_invalid_key"
    wp_option("association_app_sync_enabled", "0")
    with (
        WordPressClient(real_wp.url, real_wp.key, allow_private=True) as client,
        pytest.raises(SyncDisabled),
    ):
        client.ping()


def test_iter_pages_walks_every_type_with_keyset_paging(real_wp, client, api):
    for entity_type, endpoint in contract.ENTITY_ENDPOINTS.items():
        expected = api.get(endpoint).json()["items"]
        pages = list(client.iter_pages(entity_type, per_page=2))
        got = [item for page in pages for item in page.items]
        assert [i["id"] for i in got] == [i["id"] for i in expected], entity_type
        assert got == expected
    # incremental: only what changed after the mark
    mark = contract.parse_gmt(api.get("ping").json()["server_time_gmt"]) - timedelta(seconds=1)
    article = real_wp.manifest["articles"]["filler3"]
    real_wp.update_post(article, post_content="<p>Edited in WordPress.</p>")
    pages = list(client.iter_pages("article", modified_after=mark))
    assert article in [i["id"] for p in pages for i in p.items]
    assert pages[-1].items[-1]["id"] == article, "the edited record comes last"
    assert pages[-1].items[-1]["content"] == "<p>Edited in WordPress.</p>\n"


def test_get_push_conflict_and_errors(real_wp, client):
    company = real_wp.create_post(post_type="company", post_title="Client Co")
    record = client.get_record("company", company)
    assert record["name"] == "Client Co"
    seen = contract.parse_gmt(record["modified_gmt"])
    updated = client.push_record(
        "company",
        company,
        {"industry": "Testing", "website": "https://client.example/"},
        if_unmodified_since=seen,
    )
    assert updated["industry"] == "Testing" and updated["website"] == "https://client.example/"
    with pytest.raises(WriteConflict) as excinfo:
        client.push_record(
            "company", company, {"industry": "Stale"}, if_unmodified_since=seen - timedelta(days=1)
        )
    assert excinfo.value.current_record["industry"] == "Testing"
    with pytest.raises(BadRequest) as bad:
        client.push_record("company", company, {"slug": "nope"})
    assert "slug" in bad.value.params
    with pytest.raises(RecordNotFound):
        client.get_record("event", company)


def test_iter_deletions(real_wp, client):
    since = datetime.now(UTC) - timedelta(seconds=5)
    doomed = real_wp.create_post(post_type="notification", post_title="Doomed")
    real_wp.php(f"<?php wp_trash_post( {doomed} );")
    entries = [e for page in client.iter_deletions(since) for e in page.items]
    assert {"entity_type": "notification", "id": doomed} in [
        {k: e[k] for k in ("entity_type", "id")} for e in entries
    ]


def test_a_sync_paced_to_the_plugins_announced_limit_meets_no_429(real_wp, wp_option):
    # 8 requests per rolling 2 s (the plugin's window is 60 s; shortened to see several).
    wp_option("association_app_rate_limit", 8)
    wp_option("association_app_rate_window", 2)
    real_wp.php("<?php update_option( 'association_app_rate_log', array(), false );")
    with WordPressClient(real_wp.url, real_wp.key, allow_private=True) as client:
        client.ping()
        walks = [client.iter_pages(t, per_page=1) for t in ("article", "member")]
        pages = sum(1 for walk in walks for _ in walk)
    assert pages > 3 * 8  # several windows' worth
    # One request per page and the ping: a 429 would have been a retry, one request more.
    assert client.request_count == pages + 1
    assert client.pacer.limit == Limit(8, 2.0)
    assert client.pacer.waited > 0

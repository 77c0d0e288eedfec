"""The real client against the real simulator over loopback (contract v1 end to end)."""

import itertools
import json
import math
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.wordpress import contract
from connectors.wordpress.client import WordPressClient
from connectors.wordpress.errors import (
    AuthenticationFailed,
    BadRequest,
    InvalidResponse,
    PluginMissing,
    RateLimited,
    RecordNotFound,
    RequestTimedOut,
    ResponseTooLarge,
    ServerError,
    SiteUnreachable,
    SyncDisabled,
    TLSFailure,
    WriteConflict,
)
from wpsim import BAD_FIELDS, SimulatedSite, SiteClock, serve

from ..conftest import WORDPRESS_FIXTURES

KEY = "wpsim-test-key-0123456789abcdef0123"
FROZEN = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
FIXTURE_INDEX = WORDPRESS_FIXTURES / "index.json"


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture(scope="module")
def shared():
    """A 1000-record site for read-only tests (never changed, no faults)."""
    site = SimulatedSite(records=1000, seed=1, key=KEY)
    with serve(site) as server:
        yield server


@pytest.fixture
def server():
    """A small site of its own, with a frozen clock: free to change and break."""
    site = SimulatedSite(records=300, seed=3, key=KEY, clock=SiteClock(FROZEN))
    with serve(site) as running:
        yield running


@pytest.fixture
def connect():
    clients = []

    def make(server, **kwargs):
        kwargs.setdefault("allow_private", True)
        kwargs.setdefault("sleep", Sleeps())
        client = WordPressClient(server.url, kwargs.pop("key", KEY), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def all_items(pages):
    return [item for page in pages for item in page.items]


# --- ping, root, headers --------------------------------------------------------------


def test_ping(shared, connect):
    info = connect(shared).ping()
    assert info["plugin"] == "association-app"
    assert info["contract_version"] == 1
    assert info["entity_types"] == list(contract.ENTITY_TYPES)
    assert info["site_url"] == info["home_url"] == shared.url
    contract.parse_gmt(info["server_time_gmt"])


def test_plugin_headers(shared, connect):
    response = connect(shared).probe("api/v1/sync/articles?per_page=3", with_key=True)
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.headers[contract.CONTRACT_VERSION_HEADER] == "1"
    assert "no-store" in response.headers["cache-control"]
    assert response.headers[contract.TOTAL_HEADER] == "250"
    assert response.headers[contract.TOTAL_PAGES_HEADER] == "84"


def test_ping_without_key_is_401_json_proving_the_plugin_exists(shared, connect):
    response = connect(shared).probe("api/v1/sync/ping", with_key=False)
    assert response.status_code == 401
    assert response.json()["code"] == "association_sync_missing_key"


def test_both_url_families_serve_the_same_routes(shared, connect):
    client = connect(shared)
    for path in ("wp-json/association-app/v1/ping", "?rest_route=/association-app/v1/ping"):
        response = client.probe(path, with_key=True)
        assert response.status_code == 200, path
        assert response.json()["plugin"] == "association-app"


def test_rest_index_has_the_shape_of_real_wordpress(shared, connect):
    index = connect(shared).get_rest_index()
    real = json.loads(FIXTURE_INDEX.read_text())
    assert set(index) == set(real)
    for key, value in real.items():
        assert type(index[key]) is type(value), key
    assert set(real["namespaces"]) <= set(index["namespaces"])
    assert "association-app/v1" in index["namespaces"]
    assert index["url"] == index["home"] == shared.url
    for name in ("/", "/wp/v2", "/wp/v2/posts"):
        assert set(index["routes"][name]) == set(real["routes"][name]), name
    for name, route in index["routes"].items():
        assert {"namespace", "methods", "endpoints"} <= set(route), name
    plugin = [r for r in index["routes"] if r.startswith("/association-app/v1")]
    assert "/association-app/v1/ping" in plugin
    assert "/association-app/v1/events/(?P<id>[\\d]+)" in plugin
    assert "/association-app/v1/deletions" in plugin
    assert connect(shared).probe("?rest_route=/").json()["name"] == index["name"]


def test_unknown_routes_and_methods_are_rest_no_route(shared, connect):
    client = connect(shared)
    for path in ("api/v1/sync/posts", "api/v1/sync/articles/abc", "api/v1/sync/ping/extra"):
        response = client.probe(path, with_key=True)
        assert response.status_code == 404
        assert response.json() == {
            "code": "rest_no_route",
            "message": "No route was found matching the URL and request method.",
            "data": {"status": 404},
        }
    assert client.probe("api/v1/sync/ping", method="DELETE", with_key=True).status_code == 404


def test_theme_pages_and_uploads(shared, connect):
    client = connect(shared)
    assert client.check_reachable() >= 0
    home = client.probe("")
    assert home.status_code == 200
    assert "text/html" in home.headers["content-type"]
    assert client.probe("no-such-page/").status_code == 404


# --- list endpoints ---------------------------------------------------------------------


@pytest.mark.parametrize("entity_type", contract.ENTITY_TYPES)
def test_full_pull_returns_every_record_in_keyset_order(shared, connect, entity_type):
    client = connect(shared)
    pages = list(client.iter_pages(entity_type, per_page=37))
    items = all_items(pages)
    assert [i["id"] for i in items] == shared.site.ids(entity_type)
    keys = [(i["modified_gmt"], i["id"]) for i in items]
    assert keys == sorted(keys)
    assert pages[0].total == shared.site.count(entity_type)
    assert pages[0].total_pages == math.ceil(shared.site.count(entity_type) / 37)
    assert client.request_count == len(pages)


def test_page_number_paging_and_page_past_the_end(shared, connect):
    client = connect(shared)
    ids = []
    for page in range(1, 5):
        body = client.probe(f"api/v1/sync/companies?page={page}&per_page=25", with_key=True).json()
        assert (body["page"], body["per_page"], body["total"], body["total_pages"]) == (
            page,
            25,
            80,
            4,
        )
        ids += [item["id"] for item in body["items"]]
    assert ids == shared.site.ids("company")
    past = client.probe("api/v1/sync/companies?page=9&per_page=25", with_key=True)
    assert past.status_code == 200
    body = past.json()
    # Contract 1.2 (§5.7): every list answer also says the site's time and the change log's head.
    assert contract.parse_gmt(body.pop("server_time_gmt"))
    assert isinstance(body.pop("change_seq"), int)
    assert body == {"items": [], "page": 9, "per_page": 25, "total": 80, "total_pages": 4}


@pytest.mark.parametrize(
    ("query", "param", "detail"),
    [
        ("per_page=1000", "per_page", "rest_out_of_bounds"),
        ("per_page=0", "per_page", "rest_out_of_bounds"),
        ("page=0", "page", "rest_out_of_bounds"),
        ("page=two", "page", "rest_invalid_type"),
        ("modified_after=2024-11-30T08:00:00%2B00:00", "modified_after", "rest_invalid_date"),
        ("modified_after=2024-11-30 08:00:00", "modified_after", "rest_invalid_date"),
        ("modified_after=2024-11-30", "modified_after", "rest_invalid_date"),
        ("modified_after=2024-11-30T08:00:00.5", "modified_after", "rest_invalid_date"),
        ("after_id=5", "after_id", "rest_missing_dependency"),
    ],
)
def test_invalid_parameters_use_the_core_error_shape(shared, connect, query, param, detail):
    response = connect(shared).probe(f"api/v1/sync/articles?{query}", with_key=True)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "rest_invalid_param"
    assert body["message"] == f"Invalid parameter(s): {param}"
    assert param in body["data"]["params"]
    assert body["data"]["details"][param]["code"] == detail
    assert body["data"]["details"][param]["data"] is None


def test_key_is_checked_before_parameters(shared, connect):
    response = connect(shared).probe("api/v1/sync/articles?per_page=1000", with_key=False)
    assert response.status_code == 401


def test_invalid_parameters_through_the_client_are_bad_request(shared, connect):
    client = connect(shared)
    with pytest.raises(BadRequest, match="per_page must be between 1"):
        client._call("GET", client.api_url("articles"), params={"per_page": 1000})


def test_modified_after_is_exclusive_and_accepts_z(shared, connect):
    client = connect(shared)
    everything = all_items(client.iter_pages("article"))
    cutoff = everything[-10]["modified_gmt"]
    expected = [i["id"] for i in everything if i["modified_gmt"] > cutoff]
    since = contract.parse_gmt(cutoff)
    newer = all_items(client.iter_pages("article", modified_after=since))
    assert [i["id"] for i in newer] == expected
    assert len(expected) <= 9  # the cutoff record itself is excluded
    with_z = client.probe(f"api/v1/sync/articles?modified_after={cutoff}Z", with_key=True)
    assert [i["id"] for i in with_z.json()["items"]] == expected


def test_after_id_breaks_same_second_ties(shared, connect):
    site = shared.site
    order = [(site.record("member", i)["modified_gmt"], i) for i in site.ids("member")]
    tied = next(
        (stamp, rid) for (stamp, rid), (nxt, _) in itertools.pairwise(order) if stamp == nxt
    )
    body = (
        connect(shared)
        .probe(
            f"api/v1/sync/members?modified_after={tied[0]}&after_id={tied[1]}&per_page=5",
            with_key=True,
        )
        .json()
    )
    first = body["items"][0]
    assert (first["modified_gmt"], first["id"]) > tied
    assert first["modified_gmt"] == tied[0]  # the tie partner comes next, not skipped


def test_keyset_paging_misses_nothing_while_the_site_changes(server, connect):
    site = server.site
    client = connect(server)
    before = set(site.ids("article"))
    seen: list[int] = []
    deleted: list[int] = []
    for number, page in enumerate(client.iter_pages("article", per_page=10)):
        seen += [item["id"] for item in page.items]
        if number == 1:
            # An editor works in WordPress during the sync: already-read records move to
            # the end, unread ones are deleted, new ones appear.
            site.clock.advance(5)
            site.edit("article", ids=seen[:3])
            deleted = site.delete("article", ids=site.ids("article")[40:42])
            site.add("article", 2)
    expected = (before - set(deleted)) | set(site.ids("article"))
    assert set(seen) == expected
    assert seen.count(seen[0]) == 2  # the edited record was delivered again, with its new version


def test_plain_page_numbers_would_skip_records_when_the_site_changes(server, connect):
    """Why the contract mandates keyset paging: page=N shifts under an edit."""
    site = server.site
    client = connect(server)
    before = set(site.ids("article"))
    seen = []
    for page in range(1, 100):
        body = client.probe(f"api/v1/sync/articles?page={page}&per_page=10", with_key=True).json()
        if not body["items"]:
            break
        seen += [item["id"] for item in body["items"]]
        if page == 1:
            site.clock.advance(5)
            site.edit("article", ids=seen[:1])
    assert set(seen) != before


def test_incremental_pull_returns_only_changes(server, connect):
    site = server.site
    client = connect(server)
    mark = contract.parse_gmt(all_items(client.iter_pages("event"))[-1]["modified_gmt"])
    site.clock.advance(60)
    edited = site.edit("event", 4)
    added = site.add("event", 2)
    start = mark - timedelta(seconds=contract.INCREMENTAL_OVERLAP_SECONDS)
    changed = all_items(client.iter_pages("event", modified_after=start))
    ids = {item["id"] for item in changed}
    assert set(edited) | set(added) <= ids
    assert all(item["modified_gmt"] >= contract.format_gmt(start) for item in changed)
    assert changed[-1]["modified_gmt"] == "2026-01-15T12:01:00"


def test_every_post_type_serves_its_status_and_password_protection(shared, connect):
    """Contract 1.2 (§9.0): `status` and `password_protected` on every post-based record,
    every working status and some protected posts among them, as on a real site."""
    client = connect(shared)
    statuses = set()
    for entity_type in contract.ENTITY_TYPES:
        if entity_type == "member":
            continue
        items = all_items(client.iter_pages(entity_type))
        statuses |= {item["status"] for item in items}
        assert {item["status"] for item in items} <= set(contract.SERVED_POST_STATUSES)
        assert all(isinstance(item["password_protected"], bool) for item in items)
        assert any(item["password_protected"] for item in items), entity_type
    assert statuses == set(contract.SERVED_POST_STATUSES)


def test_a_change_behind_the_plugins_back_is_served_but_not_to_an_incremental(server, connect):
    """tamper() is a direct SQL UPDATE, tamper_delete() a direct DELETE: the records served
    change, nothing an incremental sync reads does (what the reconciliation exists for)."""
    site = server.site
    client = connect(server)
    items = all_items(client.iter_pages("company"))
    mark = items[-1]["modified_gmt"]
    quiet, gone = items[0]["id"], items[1]["id"]
    deletions = len(site.deletions())

    site.tamper("company", quiet, industry="Changed in the database")
    site.tamper_delete("company", gone)

    assert client.get_record("company", quiet)["industry"] == "Changed in the database"
    assert client.get_record("company", quiet)["modified_gmt"] == items[0]["modified_gmt"]
    assert all_items(client.iter_pages("company", modified_after=contract.parse_gmt(mark))) == []
    assert len(site.deletions()) == deletions
    served = {item["id"] for item in all_items(client.iter_pages("company"))}
    assert quiet in served and gone not in served


# --- single record, deletions -----------------------------------------------------------


def test_get_record(shared, connect):
    client = connect(shared)
    rid = shared.site.ids("conference")[0]
    assert client.get_record("conference", rid) == shared.site.record("conference", rid)
    with pytest.raises(RecordNotFound, match=f"No event with id {rid}"):
        client.get_record("event", rid)  # a conference id is not an event
    with pytest.raises(RecordNotFound):
        client.get_record("member", 999_999)


def test_deletions_feed(server, connect):
    site = server.site
    client = connect(server)
    site.clock.advance(10)
    gone_articles = site.delete("article", 3)
    site.clock.advance(1)
    gone_members = site.delete("member", 1)
    since = FROZEN + timedelta(seconds=5)
    entries = all_items(client.iter_deletions(since, per_page=2))
    assert [(e["entity_type"], e["id"]) for e in entries] == [
        *sorted([("article", i) for i in gone_articles], key=lambda e: e[1]),
        ("member", gone_members[0]),
    ]
    assert entries[0]["deleted_gmt"] == "2026-01-15T12:00:10"
    with pytest.raises(RecordNotFound):
        client.get_record("article", gone_articles[0])
    # since is exclusive
    later = contract.parse_gmt(entries[-1]["deleted_gmt"])
    assert all_items(client.iter_deletions(later)) == []
    # the generated history (posts deleted long ago) is there too
    assert len(all_items(client.iter_deletions(None))) == len(site.deletions())


def test_list_answers_carry_the_types_deletions_when_asked(server, connect):
    """Contract 1.1 (§5.6): `deleted_since` adds the type's deletions to the first page."""
    site = server.site
    client = connect(server)
    site.clock.advance(10)
    gone = sorted(site.delete("event", 2))
    site.delete("article", 1)  # another type: not in the events' answer
    since = FROZEN + timedelta(seconds=5)

    first, *rest = client.iter_pages("event", per_page=5, deleted_since=since)
    assert [(e["id"], e["deleted_gmt"]) for e in first.deleted] == [
        (i, "2026-01-15T12:00:10") for i in gone
    ]
    assert first.deleted_more is False
    assert rest and all(page.deleted is None for page in rest)  # first page only
    assert "deleted_since" not in str(site.request_log[-1]["path"])
    # Exclusive, like the feed's `since`; not asked for, not sent.
    (page,) = client.iter_pages(
        "event", modified_after=FROZEN, deleted_since=FROZEN + timedelta(seconds=10)
    )
    assert page.deleted == [] and page.deleted_more is False
    assert next(client.iter_pages("event", per_page=5)).deleted is None


def test_inline_deletions_are_capped_with_a_flag(server, connect):
    site = server.site
    client = connect(server)
    site.clock.advance(10)
    cap = contract.MAX_INLINE_DELETIONS
    site.add("member", cap + 1)
    members = sorted(site.ids("member"))
    site.delete("member", ids=members[:cap])

    page = next(client.iter_pages("member", deleted_since=FROZEN))
    assert [e["id"] for e in page.deleted] == members[:cap]
    assert page.deleted_more is False  # exactly the cap: all of them

    site.delete("member", ids=[members[cap]])
    page = next(client.iter_pages("member", deleted_since=FROZEN))
    assert [e["id"] for e in page.deleted] == members[:cap]  # the oldest first
    assert page.deleted_more is True


def test_a_contract_1_0_site_ignores_deleted_since(connect):
    site = SimulatedSite(
        records=50, seed=3, key=KEY, clock=SiteClock(FROZEN), plugin_version="1.0.0"
    )
    with serve(site) as server:
        client = connect(server)
        site.clock.advance(10)
        site.delete("article", 1)
        page = next(client.iter_pages("article", deleted_since=FROZEN))
        assert page.deleted is None and page.deleted_more is False
        assert client.ping()["plugin_version"] == "1.0.0"


def test_invalid_deleted_since_is_refused(server, connect):
    client = connect(server)
    response = client.probe("api/v1/sync/events?deleted_since=2026-01-15", with_key=True)
    assert response.status_code == 400
    assert response.json()["data"]["params"] == {"deleted_since": "Invalid date."}


# --- writes -------------------------------------------------------------------------------


def test_push_updates_bumps_modified_and_is_readable_back(server, connect):
    site = server.site
    client = connect(server)
    rid = site.ids("event")[0]
    before = site.record("event", rid)
    site.clock.advance(30)
    result = client.push_record(
        "event",
        rid,
        {"venue": "Hall B", "capacity": 180, "address": {"city": "Köln"}},
        if_unmodified_since=contract.parse_gmt(before["modified_gmt"]),
    )
    assert result["venue"] == "Hall B"
    assert result["capacity"] == 180
    assert result["address"]["city"] == "Köln"
    assert result["address"]["street"] == before["address"]["street"]  # merged, not replaced
    assert result["modified_gmt"] == "2026-01-15T12:00:30"
    assert site.record("event", rid) == result
    assert site.writes[-1]["fields"] == {
        "venue": "Hall B",
        "capacity": 180,
        "address": {"city": "Köln"},
    }
    assert site.ids("event")[-1] == rid  # now the newest: next incremental pull sees it


def test_push_conflict(server, connect):
    site = server.site
    client = connect(server)
    rid = site.ids("company")[0]
    seen = contract.parse_gmt(site.record("company", rid)["modified_gmt"])
    site.clock.advance(100)
    site.edit("company", ids=[rid])  # edited in WordPress meanwhile
    with pytest.raises(WriteConflict) as excinfo:
        client.push_record("company", rid, {"industry": "Training"}, if_unmodified_since=seen)
    assert excinfo.value.current_record == site.record("company", rid)
    assert excinfo.value.modified_gmt == "2026-01-15T12:01:40"
    assert not site.writes
    # equal is fine
    fresh = contract.parse_gmt(site.record("company", rid)["modified_gmt"])
    client.push_record("company", rid, {"industry": "Training"}, if_unmodified_since=fresh)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"slug": "new"}, "slug"),
        ({"id": 5}, "id"),
        ({"title": None}, "title"),
        ({"capacity": -1}, "capacity"),
        ({"capacity": "many"}, "capacity"),
        ({"status": "future"}, "status"),
        ({"registration_url": "javascript:alert(1)"}, "registration_url"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"address": {"country": "Germany"}}, "address"),
        ({"address": {"planet": "Earth"}}, "address"),
        ({"start_gmt": "2025-03-14 09:00:00"}, "start_gmt"),
        ({"end_gmt": "2000-01-01T00:00:00"}, "end_gmt"),
        ({}, "body"),
    ],
)
def test_push_validation(server, connect, fields, param):
    site = server.site
    rid = next(i for i in site.ids("event") if site.record("event", i)["start_gmt"][:2] == "20")
    with pytest.raises(BadRequest) as excinfo:
        connect(server).push_record("event", rid, fields)
    assert param in excinfo.value.params
    assert excinfo.value.code == "rest_invalid_param"
    assert not site.writes


def test_push_to_missing_record_and_invalid_json(server, connect):
    client = connect(server)
    with pytest.raises(RecordNotFound):
        client.push_record("article", 999_999, {"title": "x"})
    raw = httpx.put(
        f"{server.url}/api/v1/sync/articles/{server.site.ids('article')[0]}",
        content=b"[1, 2",
        headers={contract.KEY_HEADER: KEY, "Content-Type": "application/json"},
    )
    assert raw.status_code == 400
    assert raw.json()["code"] == "rest_invalid_json"


def test_method_override_post_is_treated_as_put(server):
    rid = server.site.ids("notification")[0]
    response = httpx.post(
        f"{server.url}/api/v1/sync/notifications/{rid}",
        json={"priority": "urgent"},
        headers={contract.KEY_HEADER: KEY, "X-HTTP-Method-Override": "PUT"},
    )
    assert response.status_code == 200
    assert server.site.record("notification", rid)["priority"] == "urgent"


def test_nullable_empty_string_is_stored_as_null(server, connect):
    rid = server.site.ids("member")[0]
    result = connect(server).push_record("member", rid, {"phone": "", "certifications": ["CPR"]})
    assert result["phone"] is None
    assert result["certifications"] == ["CPR"]


# --- faults ---------------------------------------------------------------------------------


def test_latency(server, connect):
    server.site.inject("latency", endpoint="ping", seconds=0.3)
    client = connect(server)
    started = datetime.now(UTC)
    client.ping()
    assert (datetime.now(UTC) - started).total_seconds() >= 0.3


def test_429_with_retry_after_then_success(server, connect):
    server.site.inject("status", endpoint="ping", status=429, retry_after=4)
    client = connect(server)
    assert client.ping()["plugin"] == "association-app"
    assert client.sleep == [4.0]


def test_429_forever_is_rate_limited(server, connect):
    server.site.inject("status", endpoint="ping", status=429, retry_after=2, every=True)
    client = connect(server, max_retries=2)
    with pytest.raises(RateLimited) as excinfo:
        client.ping()
    assert excinfo.value.retry_after == 2
    assert server.site.request_count == 3


def test_site_rate_limit(server, connect):
    server.site.rate_limit = 3
    client = connect(server, max_retries=0)
    for _ in range(3):
        client.ping()
    with pytest.raises(RateLimited):
        client.ping()
    response = client.probe("api/v1/sync/ping", with_key=True)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) == response.json()["data"]["retry_after"] >= 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_mid_sync_is_retried_and_nothing_is_lost(server, connect, status):
    site = server.site
    site.inject("status", endpoint="articles", status=status, nth=3, count=2)
    client = connect(server)
    items = all_items(client.iter_pages("article", per_page=10))
    assert [i["id"] for i in items] == site.ids("article")
    assert len(client.sleep) == 2
    assert site.request_count == math.ceil(len(items) / 10) + 2


@pytest.mark.parametrize(
    ("status", "text"),
    [(500, "association_sync_internal_error"), (502, "Bad Gateway"), (503, "Service Unavailable")],
)
def test_5xx_forever_is_server_error(server, connect, status, text):
    server.site.inject("status", endpoint="members", status=status, every=True)
    client = connect(server, max_retries=2)
    with pytest.raises(ServerError, match=text) as excinfo:
        next(client.iter_pages("member"))
    assert excinfo.value.status_code == status
    assert "after 3 attempts" in excinfo.value.message
    client.ping()  # scoped to members: the rest of the site works


def test_hang_is_request_timed_out(server, connect):
    server.site.inject("hang", endpoint="ping", seconds=5, every=True)
    client = connect(server, timeout=0.3, max_retries=1)
    with pytest.raises(RequestTimedOut, match=r"did not answer within 0\.3 s"):
        client.ping()


def test_connection_reset_is_site_unreachable(server, connect):
    server.site.inject("reset", endpoint="ping", every=True)
    client = connect(server, max_retries=1)
    with pytest.raises(SiteUnreachable, match="after 2 attempts"):
        client.ping()


def test_one_reset_mid_sync_is_survived(server, connect):
    server.site.inject("reset", endpoint="documents", nth=2)
    client = connect(server)
    items = all_items(client.iter_pages("document", per_page=20))
    assert [i["id"] for i in items] == server.site.ids("document")


def test_truncated_json(server, connect):
    server.site.inject("truncate", endpoint="articles")
    with pytest.raises(InvalidResponse, match="truncated"):
        next(connect(server).iter_pages("article"))


def test_html_instead_of_json(server, connect):
    server.site.inject("html", endpoint="ping")
    with pytest.raises(InvalidResponse, match="HTML page"):
        connect(server).ping()


def test_wrong_total(server, connect):
    server.site.inject("wrong_total", endpoint="events")
    with pytest.raises(InvalidResponse, match="X-WP-Total"):
        next(connect(server).iter_pages("event"))


def test_oversized_response(server, connect):
    server.site.inject("oversize", endpoint="ping")
    with pytest.raises(ResponseTooLarge, match="10,485,760-byte limit"):
        connect(server).ping()


def test_oversized_record_is_skipped_after_halving(server, connect):
    site = server.site
    victim = site.ids("article")[5]
    site.update("article", victim, content="<p>" + "x" * 40_000 + "</p>")
    client = connect(server, max_response_bytes=30_000)
    pages = list(client.iter_pages("article", per_page=8))
    delivered = [i["id"] for i in all_items(pages)]
    skipped = [s["id"] for p in pages for s in p.skipped]
    assert skipped == [victim]
    assert sorted(delivered + skipped) == sorted(site.ids("article"))


def test_key_rotation(server, connect):
    client = connect(server)
    client.ping()
    new_key = server.site.rotate_key()
    with pytest.raises(AuthenticationFailed, match="regenerate") as excinfo:
        client.ping()
    assert excinfo.value.code == "association_sync_invalid_key"
    assert KEY not in excinfo.value.message
    assert connect(server, key=new_key).ping()["contract_version"] == 1


def test_plugin_missing(server, connect):
    server.site.inject("plugin_missing")
    client = connect(server)
    with pytest.raises(PluginMissing, match="Settings → Permalinks"):
        client.ping()
    assert client.probe("api/v1/sync/ping").status_code == 404
    index = client.get_rest_index()  # WordPress itself still works
    assert "wp/v2" in index["namespaces"]
    assert "association-app/v1" not in index["namespaces"]
    namespaced = client.probe("wp-json/association-app/v1/ping", with_key=True)
    assert namespaced.json()["code"] == "rest_no_route"


def test_permalinks_not_flushed(server, connect):
    server.site.inject("permalinks")
    client = connect(server)
    with pytest.raises(PluginMissing):
        client.ping()
    assert "association-app/v1" in client.get_rest_index()["namespaces"]
    assert client.probe("wp-json/association-app/v1/ping", with_key=True).status_code == 200


def test_sync_disabled(server, connect):
    server.site.inject("disabled")
    with pytest.raises(SyncDisabled):
        connect(server).ping()


def test_not_wordpress(server, connect):
    server.site.inject("not_wordpress")
    client = connect(server)
    with pytest.raises(InvalidResponse, match="REST API"):
        client.get_rest_index()
    with pytest.raises(InvalidResponse, match="HTML page"):
        client.ping()
    server.site.clear_faults()
    client.ping()


def test_fault_on_the_nth_request_from_now(server, connect):
    client = connect(server, max_retries=0)
    server.site.inject("status", status=500, nth=3)
    client.ping()
    client.ping()
    with pytest.raises(ServerError):
        client.ping()
    client.ping()


def test_tls_self_signed_certificate():
    site = SimulatedSite(records=20, seed=1, key=KEY)
    with serve(site, tls=True) as server:
        assert server.url.startswith("https://127.0.0.1:")
        strict = WordPressClient(server.url, KEY, allow_private=True, max_retries=0)
        with pytest.raises(TLSFailure, match="certificate"):
            strict.ping()
        strict.close()
        trusting = WordPressClient(server.url, KEY, allow_private=True, verify=server.cert_path)
        assert trusting.ping()["site_url"] == server.url
        trusting.close()


def test_connection_refused(connect):
    site = SimulatedSite(records=10, seed=1, key=KEY)
    server = serve(site)
    server.stop()
    client = connect(server, max_retries=1)
    with pytest.raises(SiteUnreachable, match="Could not connect"):
        client.ping()


# --- control API (out-of-process use) -----------------------------------------------------


def test_control_api(server, connect):
    url = f"{server.url}/__sim"
    auth = {contract.KEY_HEADER: KEY}
    httpx = HttpxSession()
    assert httpx.get(f"{url}/state").status_code == 401
    created = httpx.post(
        f"{url}/faults",
        json={"kind": "status", "status": 503, "endpoint": "ping", "every": True},
        headers=auth,
    )
    assert created.status_code == 201
    client = connect(server, max_retries=0)
    with pytest.raises(ServerError):
        client.ping()
    assert httpx.delete(f"{url}/faults", headers=auth).json() == {"cleared": True}
    client.ping()
    changed = httpx.post(
        f"{url}/changes", json={"action": "delete", "entity_type": "event", "n": 2}, headers=auth
    ).json()
    assert len(changed["ids"]) == 2
    assert httpx.get(f"{url}/state", headers=auth).json()["counts"]["event"] == 34
    bad = httpx.post(f"{url}/faults", json={"kind": "explode"}, headers=auth)
    assert bad.status_code == 400
    rotated = httpx.post(f"{url}/key", json={"key": "k" * 40}, headers=auth).json()
    assert rotated == {"key": "k" * 40}
    with pytest.raises(AuthenticationFailed):
        client.ping()
    assert httpx.get(f"{url}/state", headers=auth).status_code == 200  # admin key survives


class HttpxSession:
    """One keep-alive connection for a series of control calls (fast, like the module API)."""

    def __init__(self):
        self.client = httpx.Client(trust_env=False)

    def __getattr__(self, method):
        return getattr(self.client, method)


# --- data -----------------------------------------------------------------------------------


def _broken(entity_type, record):
    field = BAD_FIELDS[entity_type]
    value = record.get(field)
    if entity_type in ("event", "notification", "conference") and value is None:
        return False  # nullable: null is valid
    if entity_type in ("event", "notification"):
        try:
            contract.parse_gmt(value)
        except ValueError:
            return True
        return False
    if entity_type == "conference":
        try:
            contract.parse_date(value)
        except ValueError:
            return True
        return False
    if entity_type == "document":
        return not (value is None or isinstance(value, int))
    return value is None  # article title missing/null, member email null, company name null


@pytest.mark.parametrize("entity_type", contract.ENTITY_TYPES)
def test_bad_counts_match_the_served_records(shared, connect, entity_type):
    items = all_items(connect(shared).iter_pages(entity_type))
    broken = {i["id"] for i in items if _broken(entity_type, i)}
    assert broken == shared.site.bad_ids(entity_type)
    assert shared.site.bad_count(entity_type) == len(broken)
    assert 0.01 <= len(broken) / len(items) <= 0.03 or len(items) < 100


def test_realistic_variety(shared, connect):
    client = connect(shared)
    articles = all_items(client.iter_pages("article"))
    members = all_items(client.iter_pages("member"))
    text = json.dumps(articles + members, ensure_ascii=False)
    for sample in (
        "é",
        "ü",
        "安全",
        "أ",
        "ד",
        "🎉",
        "&#038;",
        "<script>",
        "onerror=",
        "javascript:",
    ):
        assert sample in text, sample
    assert any(a.get("title") == "" for a in articles)  # untitled drafts
    slugs = [a["slug"] for a in articles if a["slug"]]
    assert len(slugs) != len(set(slugs))  # duplicate slugs
    assert any(len(m["roles"]) > 1 for m in members)
    assert any("%" in a["slug"] for a in articles)  # percent-encoded non-ASCII slugs
    statuses = {a["status"] for a in articles}
    assert {"publish", "draft"} <= statuses


def test_images_are_served_and_broken_ones_404(shared, connect):
    client = connect(shared)
    urls = [a["featured_image_url"] for a in all_items(client.iter_pages("article"))]
    urls = [u for u in urls if u]
    broken = [u for u in urls if "/missing-" in u]
    good_png = next(u for u in urls if u.endswith(".png") and "/missing-" not in u)
    good_jpg = next(u for u in urls if u.endswith(".jpg") and "/missing-" not in u)
    assert broken
    path = good_png[len(shared.url) + 1 :]
    response = client.probe(path)
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    jpeg = client.probe(good_jpg[len(shared.url) + 1 :])
    assert jpeg.content.startswith(b"\xff\xd8\xff")
    assert client.probe(broken[0][len(shared.url) + 1 :]).status_code == 404


def test_same_seed_same_data_other_seed_other_data():
    one = SimulatedSite(records=200, seed=5, key=KEY)
    two = SimulatedSite(records=200, seed=5, key=KEY)
    other = SimulatedSite(records=200, seed=6, key=KEY)
    for entity_type in contract.ENTITY_TYPES:
        assert one.ids(entity_type) == two.ids(entity_type)
        assert [one.record(entity_type, i) for i in one.ids(entity_type)] == [
            two.record(entity_type, i) for i in two.ids(entity_type)
        ]
    assert one.ids("article") != other.ids("article")
    assert sum(one.count(t) for t in contract.ENTITY_TYPES) == 200


def test_concurrent_requests(shared):
    errors = []

    def worker(entity_type):
        try:
            with WordPressClient(shared.url, KEY, allow_private=True) as client:
                ids = [i["id"] for i in all_items(client.iter_pages(entity_type, per_page=20))]
                assert ids == shared.site.ids(entity_type)
        except Exception as exc:  # collected and asserted in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in contract.ENTITY_TYPES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


def test_bad_ids_follow_edits(server):
    site = server.site
    bad_event = sorted(site.bad_ids("event"))[0]
    site.update("event", bad_event, start_gmt="2025-05-01T10:00:00")  # repaired in WordPress
    assert bad_event not in site.bad_ids("event")
    good_event = next(i for i in site.ids("event") if i not in site.bad_ids("event"))
    site.update("event", good_event, start_gmt="soon")
    assert good_event in site.bad_ids("event")


def test_disabled_entity_types_are_not_served(connect):
    site = SimulatedSite(records=100, seed=1, key=KEY, entity_types=["article", "member"])
    with serve(site) as server:
        client = connect(server)
        assert client.ping()["entity_types"] == ["article", "member"]
        with pytest.raises(PluginMissing, match="disabled"):
            next(client.iter_pages("event"))
        assert all_items(client.iter_pages("member"))


def test_fault_endpoint_accepts_the_entity_type_name(server, connect):
    server.site.inject("status", endpoint="event", status=500, every=True)
    client = connect(server, max_retries=0)
    with pytest.raises(ServerError):
        next(client.iter_pages("event"))
    assert all_items(client.iter_pages("article"))


def test_tls_verifies_the_name_while_connecting_to_the_pinned_address():
    site = SimulatedSite(records=20, seed=1, key=KEY)
    resolver = {"localhost": ["127.0.0.1"], "wp.test": ["127.0.0.1"]}
    with serve(site, tls=True) as server:
        port = server.port
        # The certificate names "localhost": SNI and the check use the name, not the IP.
        with WordPressClient(
            f"https://localhost:{port}",
            KEY,
            allow_private=True,
            verify=server.cert_path,
            resolver=lambda host, _: resolver[host],
        ) as client:
            assert client.ping()["plugin"] == "association-app"
        with (
            WordPressClient(
                f"https://wp.test:{port}",
                KEY,
                allow_private=True,
                verify=server.cert_path,
                max_retries=0,
                resolver=lambda host, _: resolver[host],
            ) as client,
            pytest.raises(TLSFailure, match=r"wp\.test"),
        ):
            client.ping()


@pytest.mark.parametrize(
    ("entity_type", "fields", "param"),
    [
        ("conference", {"end_date": "1999-01-01"}, "end_date"),
        ("conference", {"start_date": "2025-02-30"}, "start_date"),
        ("conference", {"country": "nl"}, "country"),
        ("company", {"website": "ftp://example.org"}, "website"),
        ("company", {"logo_url": "https://x.example/logo.png"}, "logo_url"),
        ("notification", {"audience": "everyone"}, "audience"),
        ("notification", {"priority": "asap"}, "priority"),
        ("document", {"access_level": "secret"}, "access_level"),
        ("document", {"kind": "policy"}, "kind"),
        ("member", {"email": "new@example.org"}, "email"),
        ("member", {"roles": ["administrator"]}, "roles"),
        ("member", {"certifications": "CPR"}, "certifications"),
        ("article", {"categories": [1, 2]}, "categories"),
        (
            "article",
            {"if_unmodified_since": "2024-11-30T08:00:00+00:00", "title": "x"},
            "if_unmodified_since",
        ),
    ],
)
def test_push_validation_of_every_entity_type(server, connect, entity_type, fields, param):
    site = server.site
    rid = next(i for i in site.ids(entity_type) if i not in site.bad_ids(entity_type))
    before = site.record(entity_type, rid)
    with pytest.raises(BadRequest) as excinfo:
        connect(server).push_record(entity_type, rid, fields)
    assert list(excinfo.value.params) == [param]
    assert site.record(entity_type, rid) == before  # nothing written


def test_site_rate_limit_is_announced_like_the_plugin(server, connect):
    """The headers the real plugin sends (tests/wordpress_real/test_plugin_api.py)."""
    server.site.rate_limit = 3
    client = connect(server, max_retries=0)
    answers = [client.probe("api/v1/sync/ping", with_key=True) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {"3"}
    assert {a.headers["ratelimit-policy"] for a in answers} == {"3;w=60"}
    assert 1 <= int(answers[0].headers["x-ratelimit-reset"]) <= 60
    assert answers[-1].headers["x-ratelimit-reset"] == answers[-1].headers["retry-after"]
    assert answers[0].json()["rate_limit"] == {"requests": 3, "window_seconds": 60}
    assert "x-ratelimit-limit" not in client.probe("api/v1/sync/ping").headers  # no key
    assert server.site.rate_limited_count == 1

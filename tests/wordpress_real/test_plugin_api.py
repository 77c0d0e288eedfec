"""The Association App plugin on a real WordPress, spoken to with raw httpx (contract v1).

Tests that change the site create their own posts (or restore what they change), so the
seeded records keep their values for every other test.
"""

import json
from datetime import timedelta

import httpx
import pytest

from connectors.wordpress import contract
from tests.wordpress_real.conftest import wait_for_the_next_wordpress_second

pytestmark = pytest.mark.wordpress

ENDPOINTS = [
    "articles",
    "members",
    "events",
    "documents",
    "conferences",
    "companies",
    "notifications",
]
ENTITY_TYPES = ["article", "member", "event", "document", "conference", "company", "notification"]


def all_items(api, endpoint, **params):
    items, page = [], 1
    while True:
        body = api.get(endpoint, params={**params, "page": page, "per_page": 100}).json()
        items += body["items"]
        if page >= body["total_pages"]:
            return items
        page += 1


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.headers["x-association-contract-version"] == "1"
    body = response.json()
    assert body["code"] == code, body
    assert body["data"]["status"] == status
    return body


# --- discovery, auth and the order of checks (§2) -----------------------------------------


def test_rest_index_lists_the_namespace_and_routes(real_wp):
    index = httpx.get(real_wp.url + "/wp-json/").json()
    assert "association-app/v1" in index["namespaces"]
    assert "wp/v2" in index["namespaces"]
    assert "/association-app/v1/ping" in index["routes"]
    assert "/association-app/v1/events/(?P<id>[\\d]+)" in index["routes"]


def test_ping_without_key_is_401_on_every_url_family(real_wp, api):
    assert_error(api.get("ping", key=False), 401, "association_sync_missing_key")
    assert_error(
        api.get("ping", key=False, headers={"X-Association-Sync-Key": ""}),
        401,
        "association_sync_missing_key",
    )
    assert_error(api.get("ping", key="wrong-" + "k" * 40), 401, "association_sync_invalid_key")
    for url in (
        f"{real_wp.url}/wp-json/association-app/v1/ping",
        f"{real_wp.url}/?rest_route=/association-app/v1/ping",
    ):
        assert_error(httpx.get(url), 401, "association_sync_missing_key")
        ok = httpx.get(url, headers={"X-Association-Sync-Key": real_wp.key})
        assert ok.status_code == 200 and ok.json()["plugin"] == "association-app"


NO_CACHE = "no-cache, must-revalidate, max-age=0, no-store, private"


def test_every_answer_carries_the_contract_headers_on_both_url_families(real_wp, api):
    """§2.5: JSON, the contract version and no caching on answers and errors alike."""
    rest = f"{real_wp.url}/wp-json/association-app/v1/"
    key = {"X-Association-Sync-Key": real_wp.key}
    for response in (
        api.get("ping"),
        api.get("articles", params={"per_page": 1}),
        api.get("ping", key=False),
        api.get("articles", params={"per_page": 0}),
        api.get("events/999999"),
        httpx.get(rest + "ping", headers=key),
        httpx.get(rest + "members", params={"per_page": 1}, headers=key),
        httpx.get(rest + "ping"),
    ):
        assert response.headers["content-type"] == "application/json; charset=UTF-8"
        assert response.headers["x-association-contract-version"] == "1"
        assert response.headers["cache-control"] == NO_CACHE, response.url


def test_another_plugin_blocking_the_rest_api_gets_a_json_error_not_a_fatal(real_wp, api):
    """Security plugins often answer rest_pre_dispatch with a WP_Error; /api/v1/sync/ passes
    it on as the JSON error it is (core's serve_request() does the same on /wp-json/)."""
    blocker = real_wp.docroot / "wp-content" / "mu-plugins" / "zz-rest-blocker.php"
    blocker.write_text(
        "<?php add_filter( 'rest_pre_dispatch', function () {"
        " return new WP_Error( 'rest_blocked', 'REST is blocked.', array( 'status' => 403 ) );"
        " } );"
    )
    try:
        for response in (
            api.get("ping"),
            httpx.get(f"{real_wp.url}/wp-json/association-app/v1/ping"),
        ):
            assert_error(response, 403, "rest_blocked")
            assert response.headers["cache-control"] == NO_CACHE
    finally:
        blocker.unlink()
    assert api.get("ping").status_code == 200


def test_ping_with_key(real_wp, api):
    response = api.get("ping")
    assert response.status_code == 200
    assert response.headers["x-association-contract-version"] == "1"
    assert "no-store" in response.headers["cache-control"]
    ping = response.json()
    assert ping["plugin"] == "association-app"
    assert ping["plugin_version"] == "1.2.0"
    assert ping["contract_version"] == 1
    assert ping["site_name"] == "Association Test Site"
    assert ping["home_url"] == real_wp.url
    assert ping["site_url"] == real_wp.url
    assert ping["timezone"] == "Europe/Berlin"
    assert ping["gmt_offset"] in (1, 2)
    assert ping["wordpress_version"].startswith("6.")
    assert ping["entity_types"] == ENTITY_TYPES
    assert ping["max_per_page"] == 100
    assert ping["deletions_retention_days"] >= 180
    assert len(ping["server_time_gmt"]) == 19 and "T" in ping["server_time_gmt"]


def test_checks_run_in_contract_order(real_wp, api, wp_option):
    # 1. unknown route / method → 404 even without a key
    assert_error(api.get("nothing-here", key=False), 404, "rest_no_route")
    assert_error(api.post("articles", key=False), 404, "rest_no_route")
    assert_error(api.delete("articles/1"), 404, "rest_no_route")
    # OPTIONS too: core would describe the route without a key; the contract has GET and PUT
    assert_error(api.request("OPTIONS", "ping", key=False), 404, "rest_no_route")
    assert_error(
        httpx.options(f"{real_wp.url}/wp-json/association-app/v1/events/1"), 404, "rest_no_route"
    )
    # 3 before 5: an invalid parameter without a key is a 401, not a 400
    assert_error(
        api.get("articles", params={"per_page": 1000}, key=False),
        401,
        "association_sync_missing_key",
    )
    assert_error(
        api.get("articles", params={"per_page": 1000}, key="bad-" + "x" * 40),
        401,
        "association_sync_invalid_key",
    )
    # 2 before 3: switched off → 403 whatever the key
    wp_option("association_app_sync_enabled", "0")
    assert_error(api.get("ping", key=False), 403, "association_sync_disabled")
    assert_error(api.get("ping"), 403, "association_sync_disabled")
    # 1 before 2: an unknown route is still a 404 while the API is switched off
    assert_error(api.get("nothing-here"), 404, "rest_no_route")


def test_regenerating_the_key_invalidates_the_old_one_and_only_a_hash_is_stored(real_wp, api):
    old = real_wp.key
    new = real_wp.php("<?php echo wp_json_encode( association_app_generate_key() );")
    try:
        assert 32 <= len(new) <= 128 and new.isalnum() and new != old
        assert_error(api.get("ping", key=old), 401, "association_sync_invalid_key")
        assert api.get("ping", key=new).status_code == 200
        stored = real_wp.php(
            "<?php global $wpdb;"
            ' echo wp_json_encode( $wpdb->get_col( "SELECT option_value FROM {$wpdb->options}" ) );'
        )
        assert not any(new in (value or "") for value in stored), (
            "the key itself must not be stored"
        )
    finally:
        real_wp.key = new


def test_rate_limit_answers_429_with_retry_after(real_wp, api, wp_option):
    wp_option("association_app_rate_limit", 3)
    real_wp.php("<?php update_option( 'association_app_rate_log', array(), false );")
    codes = [api.get("ping").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = api.get("ping")
    body = assert_error(limited, 429, "association_sync_rate_limited")
    assert 1 <= body["data"]["retry_after"] <= 60
    assert limited.headers["retry-after"] == str(body["data"]["retry_after"])
    # the key is checked before the rate limit: a bad key is still a 401
    assert_error(api.get("ping", key=False), 401, "association_sync_missing_key")


def test_the_rate_limit_is_announced_on_every_answer(real_wp, api, wp_option):
    """X-RateLimit-Limit / -Remaining / -Reset and RateLimit-Policy (§12), so the platform
    paces itself instead of meeting the 429; the ping says the limit too."""
    wp_option("association_app_rate_limit", 5)
    real_wp.php("<?php update_option( 'association_app_rate_log', array(), false );")
    answers = [api.get("ping") for _ in range(4)] + [api.get("articles"), api.get("ping")]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {"5"}
    assert {a.headers["ratelimit-policy"] for a in answers} == {"5;w=60"}
    assert 1 <= int(answers[0].headers["x-ratelimit-reset"]) <= 60
    limited = answers[-1]
    assert limited.headers["x-ratelimit-reset"] == limited.headers["retry-after"]
    assert answers[0].json()["rate_limit"] == {"requests": 5, "window_seconds": 60}
    # Refused before the limit (no key): nothing to announce, as in the simulator.
    assert "x-ratelimit-limit" not in api.get("ping", key=False).headers

    wp_option("association_app_rate_limit", 0)
    off = api.get("ping")
    assert "x-ratelimit-limit" not in off.headers
    assert off.json()["rate_limit"]["requests"] == 0


def test_a_disabled_entity_type_is_no_route_and_left_out_of_ping(api, wp_option):
    wp_option("association_app_entity_types", [t for t in ENTITY_TYPES if t != "company"])
    assert "company" not in api.get("ping").json()["entity_types"]
    assert_error(api.get("companies"), 404, "rest_no_route")
    assert api.get("events").status_code == 200


def test_post_with_method_override_is_a_put(real_wp, api):
    event = real_wp.create_post(
        post_type="event",
        post_title="Override me",
        meta={"_association_event_start_gmt": "2025-01-01 10:00:00"},
    )
    response = api.post(
        f"events/{event}", json={"venue": "Hall C"}, headers={"X-HTTP-Method-Override": "PUT"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["venue"] == "Hall C"


# --- list endpoints (§5) ---------------------------------------------------------------


def test_lists_are_ordered_paginated_and_totalled(api):
    for endpoint in ENDPOINTS:
        full = api.get(endpoint)
        assert full.status_code == 200, (endpoint, full.text)
        body = full.json()
        items = body["items"]
        assert body["total"] == len(items) > 0, endpoint
        assert full.headers["x-wp-total"] == str(body["total"])
        assert full.headers["x-wp-totalpages"] == str(body["total_pages"]) == "1"
        keys = [(item["modified_gmt"], item["id"]) for item in items]
        assert keys == sorted(keys), endpoint
        assert "link" not in {k.lower() for k in full.headers}

    everything = api.get("articles").json()["items"]
    pages = [api.get("articles", params={"page": n, "per_page": 10}).json() for n in (1, 2, 3)]
    assert [p["total"] for p in pages] == [len(everything)] * 3
    assert [p["total_pages"] for p in pages] == [-(-len(everything) // 10)] * 3
    assert [p["page"] for p in pages] == [1, 2, 3] and pages[0]["per_page"] == 10
    assert [i["id"] for p in pages for i in p["items"]] == [i["id"] for i in everything]
    # page 1 of an empty result: 0 records, 0 pages (§5.2), headers included
    empty = api.get("articles", params={"modified_after": "2099-01-01T00:00:00"})
    assert empty.status_code == 200
    body = empty.json()
    # Contract 1.2 (§5.7): the site's clock and the change log's position, on every answer.
    assert contract.parse_gmt(body.pop("server_time_gmt")) and body.pop("change_seq") >= 0
    assert body == {"items": [], "page": 1, "per_page": 100, "total": 0, "total_pages": 0}
    assert (empty.headers["x-wp-total"], empty.headers["x-wp-totalpages"]) == ("0", "0")
    past = api.get("articles", params={"page": 99, "per_page": 10})
    assert past.status_code == 200
    assert past.headers["x-wp-total"] == str(len(everything))
    body = past.json()
    del body["server_time_gmt"], body["change_seq"]
    assert body == {
        "items": [],
        "page": 99,
        "per_page": 10,
        "total": len(everything),
        "total_pages": -(-len(everything) // 10),
    }


def test_modified_after_is_exclusive_and_after_id_is_a_keyset(real_wp, api):
    # Three events saved in the same second, then one later: the keyset walks the tie by id.
    ids = real_wp.php(
        """<?php
        global $wpdb; $ids = array();
        foreach ( array( 'Tie A', 'Tie B', 'Tie C', 'After the tie' ) as $i => $title ) {
            $ids[] = $id = wp_insert_post(
                array( 'post_type' => 'event', 'post_title' => $title, 'post_status' => 'publish' )
            );
            $when = $i < 3 ? '2030-01-01 10:00:00' : '2030-01-01 10:00:05';
            $wpdb->update(
                $wpdb->posts,
                array( 'post_modified_gmt' => $when, 'post_modified' => $when ),
                array( 'ID' => $id )
            );
            clean_post_cache( $id );
        }
        echo wp_json_encode( $ids );"""
    )
    after = api.get("events", params={"modified_after": "2030-01-01T10:00:00"}).json()
    assert [i["id"] for i in after["items"]] == [ids[3]]
    assert after["total"] == 1
    with_z = api.get("events", params={"modified_after": "2030-01-01T09:59:59Z"}).json()
    assert [i["id"] for i in with_z["items"]] == ids
    keyset = api.get(
        "events", params={"modified_after": "2030-01-01T10:00:00", "after_id": ids[0]}
    ).json()
    assert [i["id"] for i in keyset["items"]] == ids[1:]
    assert keyset["total"] == 3 and keyset["total_pages"] == 1
    # §5.5 walk with per_page=1 visits every record exactly once
    seen, cursor = [], {"modified_after": "2030-01-01T09:59:59"}
    while True:
        page = api.get("events", params={**cursor, "per_page": 1}).json()
        if not page["items"]:
            break
        last = page["items"][-1]
        seen.append(last["id"])
        if page["total_pages"] <= 1:
            break
        cursor = {"modified_after": last["modified_gmt"], "after_id": last["id"]}
    assert seen == ids
    real_wp.php(f"<?php foreach ( {json.dumps(ids)} as $id ) {{ wp_delete_post( $id, true ); }}")


@pytest.mark.parametrize(
    ("params", "param", "detail"),
    [
        ({"per_page": 1000}, "per_page", "rest_out_of_bounds"),
        ({"per_page": 0}, "per_page", "rest_out_of_bounds"),
        ({"page": 0}, "page", "rest_out_of_bounds"),
        ({"page": "two"}, "page", "rest_invalid_type"),
        ({"modified_after": "2024-11-30T08:00:00+00:00"}, "modified_after", "rest_invalid_date"),
        ({"modified_after": "2024-11-30 08:00:00"}, "modified_after", "rest_invalid_date"),
        ({"modified_after": "2024-11-30"}, "modified_after", "rest_invalid_date"),
        ({"modified_after": "2024-11-30T08:00:00.5"}, "modified_after", "rest_invalid_date"),
        ({"modified_after": "2024-02-30T08:00:00"}, "modified_after", "rest_invalid_date"),
        ({"after_id": 5}, "after_id", "rest_missing_dependency"),
        (
            {"modified_after": "2024-11-30T08:00:00", "after_id": -1},
            "after_id",
            "rest_out_of_bounds",
        ),
    ],
)
def test_invalid_query_parameters_are_400_in_core_shape(api, params, param, detail):
    body = assert_error(api.get("articles", params=params), 400, "rest_invalid_param")
    assert body["message"] == f"Invalid parameter(s): {param}"
    assert param in body["data"]["params"]
    assert body["data"]["details"][param]["code"] == detail


# Quoted verbatim in the contract (§5.1, §11) from real WordPress 6.1 responses.
CORE_PER_PAGE_ERROR = {
    "code": "rest_invalid_param",
    "message": "Invalid parameter(s): per_page",
    "data": {
        "status": 400,
        "params": {"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"},
        "details": {
            "per_page": {
                "code": "rest_out_of_bounds",
                "message": "per_page must be between 1 (inclusive) and 100 (inclusive)",
                "data": None,
            }
        },
    },
}
CORE_NO_ROUTE = {
    "code": "rest_no_route",
    "message": "No route was found matching the URL and request method.",
    "data": {"status": 404},
}


def test_error_bodies_are_those_of_wordpress_core(api):
    assert api.get("articles", params={"per_page": 1000}).json() == CORE_PER_PAGE_ERROR
    assert api.get("no/such/route").json() == CORE_NO_ROUTE


# --- records (§6, §9) ---------------------------------------------------------------------


def by_id(api, endpoint):
    return {item["id"]: item for item in all_items(api, endpoint)}


def test_article_records(real_wp, api):
    m = real_wp.manifest
    private = real_wp.create_post(post_title="Staff note", post_status="private")
    future = real_wp.create_post(
        post_title="Scheduled",
        post_status="future",
        post_date_gmt="2031-05-01 08:00:00",
        post_date="2031-05-01 10:00:00",
    )
    pending = real_wp.create_post(post_title="Awaiting review", post_status="pending")
    articles = by_id(api, "articles")
    welcome = articles[m["articles"]["welcome"]]
    assert welcome["title"] == "Welcome to the association"
    assert welcome["slug"] == "welcome-to-the-association"
    assert welcome["link"] == f"{real_wp.url}/2024/11/welcome-to-the-association/"
    assert welcome["status"] == "publish"
    assert welcome["date_gmt"] == "2024-11-29T20:00:00"
    assert welcome["excerpt"] == "<p>A short welcome.</p>\n"
    assert (
        "<strong>bold</strong> news" in welcome["content"]
        and "wp:paragraph" not in welcome["content"]
    )
    assert welcome["categories"] == ["News", "Tom &amp; Jerry"]
    assert welcome["tags"] == ["sync", "webhooks"]
    assert welcome["featured_image_url"] == m["image"]["url"]
    assert welcome["author_id"] == m["members"]["admin"] and welcome["author_name"] == "admin"
    assert welcome["password_protected"] is False

    quoted = articles[m["articles"]["quoted"]]
    assert quoted["title"] == "Tom &#038; Jerry&#8217;s &#8220;quoted&#8221; title"

    draft = articles[m["articles"]["draft"]]
    assert draft["status"] == "draft" and draft["date_gmt"] is None and draft["slug"] == ""
    assert draft["link"] == f"{real_wp.url}/?p={draft['id']}"

    protected = articles[m["articles"]["protected"]]
    assert protected["password_protected"] is True
    assert "Members only text." in protected["content"]
    assert protected["title"] == "Board only"

    assert articles[private]["title"] == "Staff note"  # no "Private: " prefix
    # every working status is served (§5.3): scheduled and pending posts too
    assert articles[future]["status"] == "future"
    assert articles[future]["date_gmt"] == "2031-05-01T08:00:00"
    assert articles[pending]["status"] == "pending"
    assert m["auto_draft"] not in articles
    assert articles[m["articles"]["hello"]]["title"] == "Hello world!"
    served = real_wp.php(
        """<?php
        global $wpdb;
        echo wp_json_encode( (int) $wpdb->get_var(
            "SELECT COUNT(*) FROM {$wpdb->posts} WHERE post_type = 'post'
             AND post_status IN ('publish', 'future', 'draft', 'pending', 'private')"
        ) );"""
    )
    assert len(articles) == served >= 25


def test_member_records(real_wp, api):
    m = real_wp.manifest["members"]
    members = by_id(api, "members")
    assert set(members) == set(m.values()), [members[i] for i in set(members) - set(m.values())]
    alice = members[m["alice"]]
    assert alice == {
        "id": m["alice"],
        "modified_gmt": alice["modified_gmt"],
        "username": "alice.muller",
        "email": "alice.muller@example.net",
        "first_name": "Alice",
        "last_name": "Müller",
        "display_name": "Alice Müller",
        "phone": "+49 30 1234567",
        "job_title": "Head of Compliance",
        "company": "Müller & Söhne GmbH",
        "address": {
            "street": "Hauptstraße 5",
            "city": "Berlin",
            "postcode": "01067",
            "country": "DE",
        },
        "certifications": ["Certified Safety Officer", "ISO 9001 Lead Auditor"],
        "roles": ["member"],
        "registered_gmt": alice["registered_gmt"],
    }
    assert alice["modified_gmt"] >= alice["registered_gmt"]
    assert members[m["bob"]]["roles"] == ["pending_member"]
    assert sorted(members[m["carol"]]["roles"]) == ["lapsed_member", "subscriber"]
    assert members[m["dave"]]["address"] == {
        "street": None,
        "city": None,
        "postcode": None,
        "country": None,
    }
    assert members[m["dave"]]["certifications"] == [] and members[m["dave"]]["phone"] is None
    assert members[m["admin"]]["roles"] == ["administrator"]


def test_event_document_conference_company_notification_records(real_wp, api):
    m = real_wp.manifest
    agm = api.get(f"events/{m['events']['agm']}").json()
    assert agm["title"] == "Annual General Meeting 2025"
    assert agm["description"] == "<p>Agenda, elections and the treasurer&#8217;s report.</p>\n"
    assert (agm["start_gmt"], agm["end_gmt"]) == ("2025-03-14T09:00:00", "2025-03-14T16:30:00")
    assert agm["timezone"] == "Europe/Berlin" and agm["venue"] == "Congress Centre, Hall A"
    assert agm["address"] == {
        "street": "Messedamm 22",
        "city": "Berlin",
        "postcode": "14055",
        "country": "DE",
    }
    assert agm["capacity"] == 250
    assert agm["registration_url"] == "https://association.example.org/events/agm-2025/register/"
    assert agm["link"] == f"{real_wp.url}/events/annual-general-meeting-2025/"
    workshop = api.get(f"events/{m['events']['workshop']}").json()
    assert (
        workshop["end_gmt"] is None
        and workshop["capacity"] is None
        and workshop["timezone"] is None
    )

    minutes = api.get(f"documents/{m['documents']['minutes']}").json()
    assert minutes["kind"] == "document"
    assert minutes["title"] == "Board minutes &#8211; November 2024"  # texturized " - "
    assert minutes["folder_path"] == "Governance/Minutes/2024"
    assert minutes["folder_segments"] == ["Governance", "Minutes", "2024"]
    assert minutes["file_url"] == m["pdf"]["url"]
    assert minutes["file_name"] == "board-minutes-2024-11.pdf"
    assert minutes["mime_type"] == "application/pdf"
    assert minutes["size"] == m["pdf"]["size"]
    assert minutes["access_level"] == "members"
    policy = api.get(f"documents/{m['documents']['policy']}").json()
    assert (
        policy["kind"],
        policy["access_level"],
        policy["folder_path"],
        policy["folder_segments"],
    ) == ("policy", "public", None, [])
    recall = api.get(f"documents/{m['documents']['recall']}").json()
    assert (recall["kind"], recall["access_level"], recall["file_url"], recall["size"]) == (
        "recall",
        "members",
        None,
        None,
    )

    summit = api.get(f"conferences/{m['conferences']['summit']}").json()
    assert {
        k: summit[k] for k in ("start_date", "end_date", "venue", "city", "country", "website")
    } == {
        "start_date": "2025-06-10",
        "end_date": "2025-06-12",
        "venue": "RAI Amsterdam",
        "city": "Amsterdam",
        "country": "NL",
        "website": "https://safetysummit.example.eu/",
    }

    company = api.get(f"companies/{m['companies']['mueller']}").json()
    assert "title" not in company
    assert company["name"] == "Müller &#038; Söhne GmbH"
    assert company["website"] == "https://mueller-soehne.example.de/"
    assert company["industry"] == "Industrial safety equipment"
    assert company["logo_url"] == m["logo"]["url"]

    note = api.get(f"notifications/{m['notifications']['recall']}").json()
    assert (note["audience"], note["priority"], note["send_at_gmt"]) == (
        "members",
        "urgent",
        "2024-11-30T08:00:00",
    )
    assert note["body"] == "<p>Stop using ladder model X200 immediately.</p>\n"


def test_single_record_not_found_cases(real_wp, api):
    m = real_wp.manifest
    body = assert_error(
        api.get(f"events/{m['articles']['welcome']}"), 404, "association_sync_not_found"
    )
    assert body["data"]["entity_type"] == "event" and body["data"]["id"] == m["articles"]["welcome"]
    assert_error(api.get(f"articles/{m['auto_draft']}"), 404, "association_sync_not_found")
    assert_error(api.get("members/999999"), 404, "association_sync_not_found")
    assert_error(api.get(f"articles/{m['image']['id']}"), 404, "association_sync_not_found")


def test_defaults_for_missing_or_invalid_meta(real_wp, api):
    note = real_wp.create_post(
        post_type="notification",
        post_title="Defaults",
        meta={"_association_notification_priority": "bogus"},
    )
    doc = real_wp.create_post(
        post_type="document", post_title="No level", meta={"_association_access_level": ""}
    )
    assert api.get(f"notifications/{note}").json()["priority"] == "normal"
    assert api.get(f"notifications/{note}").json()["audience"] == "members"
    assert api.get(f"documents/{doc}").json()["access_level"] == "members"


VOLUME_PHP = """<?php
// 20 records of every type, each with its own related objects (author, featured image, file,
// folder, terms, meta), so a page that loaded anything per record would cost more queries.
require_once ABSPATH . 'wp-admin/includes/user.php';
$n = 20; $out = array( 'posts' => array(), 'users' => array() );
$folder = 0;
for ( $i = 0; $i < $n; $i++ ) {
    $user = wp_insert_user( array(
        'user_login' => "volume.user$i", 'user_email' => "volume.user$i@example.net",
        'user_pass' => wp_generate_password(), 'role' => $i % 2 ? 'member' : 'lapsed_member',
        'first_name' => "Volume $i",
    ) );
    foreach ( array( '_association_phone' => "+49 $i", '_association_address_city' => 'Bonn',
        '_association_certifications' => array( "Cert $i" ) ) as $k => $v ) {
        update_user_meta( $user, $k, $v );
    }
    $out['users'][] = $user;
    $image = wp_insert_attachment( array( 'post_mime_type' => 'image/png',
        'post_title' => "img$i", 'post_status' => 'inherit' ), "volume-$i.png" );
    $file = wp_insert_attachment( array( 'post_mime_type' => 'application/pdf',
        'post_title' => "file$i", 'post_status' => 'inherit' ), "volume-$i.pdf" );
    $folder = wp_insert_term( "Volume folder $i", 'folder', array( 'parent' => $folder ) );
    $folder = $folder['term_id'];
    $common = array( 'post_status' => 'publish', 'post_author' => $user,
        'post_content' => "<p>Volume $i</p>" );
    $ids = array(
        'post' => wp_insert_post( $common + array( 'post_title' => "Volume article $i",
            'tags_input' => array( "volume-$i", 'volume' ) ) ),
        'event' => wp_insert_post( $common + array( 'post_type' => 'event',
            'post_title' => "Volume event $i" ) ),
        'document' => wp_insert_post( $common + array(
            'post_type' => array( 'document', 'policy', 'recall' )[ $i % 3 ],
            'post_title' => "Volume document $i" ) ),
        'conference' => wp_insert_post( $common + array( 'post_type' => 'conference',
            'post_title' => "Volume conference $i" ) ),
        'company' => wp_insert_post( $common + array( 'post_type' => 'company',
            'post_title' => "Volume company $i" ) ),
        'notification' => wp_insert_post( $common + array( 'post_type' => 'notification',
            'post_title' => "Volume notification $i" ) ),
    );
    $category = wp_insert_term( "Volume cat $i", 'category' );
    wp_set_post_categories( $ids['post'], array( $category['term_id'] ) );
    set_post_thumbnail( $ids['post'], $image );
    set_post_thumbnail( $ids['company'], $image );
    update_post_meta( $ids['document'], '_association_file_id', $file );
    wp_set_object_terms( $ids['document'], array( $folder ), 'folder' );
    update_post_meta( $ids['event'], '_association_event_start_gmt', '2031-01-01 10:00:00' );
    update_post_meta( $ids['event'], '_association_event_venue', "Hall $i" );
    update_post_meta( $ids['event'], '_association_event_address_city', 'Bonn' );
    update_post_meta( $ids['conference'], '_association_conference_start_date', '2031-01-01' );
    update_post_meta( $ids['conference'], '_association_conference_city', 'Bonn' );
    update_post_meta( $ids['company'], '_association_company_industry', 'Volume' );
    update_post_meta( $ids['notification'], '_association_notification_priority', 'high' );
    $out['posts'] = array_merge( $out['posts'], array_values( $ids ), array( $image, $file ) );
}
echo wp_json_encode( $out );
"""


def test_a_page_costs_the_same_sql_queries_for_2_and_for_20_records(real_wp, api):
    """No query per record (issue 8), measured over HTTP: the whole request of a page of 20
    records runs exactly as many SQL queries as a page of 2, for every endpoint."""
    # `modified_after` is exclusive at one-second resolution: wait out the second of the previous
    # test's writes so its records (which may carry images or authors that prime another cache
    # batch) do not slip into the pages and make the two counts differ by content.
    wait_for_the_next_wordpress_second(api)
    cutoff = contract.format_gmt(
        contract.parse_gmt(api.get("ping").json()["server_time_gmt"]) - timedelta(seconds=1)
    )
    created = real_wp.php(VOLUME_PHP)
    try:
        for endpoint in ENDPOINTS:
            costs = {}
            for per_page in (2, 20):
                response = api.get(
                    endpoint, params={"per_page": per_page, "modified_after": cutoff}
                )
                assert len(response.json()["items"]) == per_page, endpoint
                costs[per_page] = int(response.headers["x-harness-queries"])
            assert costs[2] == costs[20], (endpoint, costs)
            # a single record costs no more than a page
            one = api.get(f"{endpoint}/{response.json()['items'][-1]['id']}")
            assert one.status_code == 200, one.text
            assert int(one.headers["x-harness-queries"]) <= costs[20], endpoint
    finally:
        real_wp.php(
            f"""<?php
            require_once ABSPATH . 'wp-admin/includes/user.php';
            foreach ( {json.dumps(created["posts"])} as $id ) {{ wp_delete_post( $id, true ); }}
            foreach ( {json.dumps(created["users"])} as $id ) {{ wp_delete_user( $id ); }}"""
        )


# --- deletions (§8) -----------------------------------------------------------------------


def test_deletions_feed_records_trash_delete_user_and_type_change(real_wp, api):
    # `since` is exclusive: this second, once the site's clock has passed it, so the feed holds
    # this test's entries only (an earlier test's clean-up in the same second deleted enough
    # records to push these onto a second page).
    since = api.get("ping").json()["server_time_gmt"]
    wait_for_the_next_wordpress_second(api, since)
    trashed = real_wp.create_post(post_title="Trash me")
    deleted = real_wp.create_post(post_type="event", post_title="Delete me")
    moved = real_wp.create_post(post_type="event", post_title="Becomes an article")
    draft_trashed = real_wp.create_post(
        post_type="company", post_title="Draft co", post_status="draft"
    )
    user = real_wp.create_user("gone.user")
    real_wp.php(
        f"""<?php
        require_once ABSPATH . 'wp-admin/includes/user.php';
        wp_trash_post( {trashed} );
        wp_delete_post( {deleted}, true );
        wp_update_post( array( 'ID' => {moved}, 'post_type' => 'post' ) );
        wp_trash_post( {draft_trashed} );
        wp_delete_post( {draft_trashed}, true );
        wp_delete_user( {user} );
        $auto = wp_insert_post( array( 'post_title' => 'x', 'post_status' => 'auto-draft' ) );
        wp_delete_post( $auto, true );"""
    )
    feed = api.get("deletions", params={"since": since})
    body = feed.json()
    entries = [(e["entity_type"], e["id"]) for e in body["items"]]
    assert ("article", trashed) in entries
    assert ("event", deleted) in entries
    assert ("event", moved) in entries
    assert ("company", draft_trashed) in entries
    assert ("member", user) in entries
    assert entries.count(("article", trashed)) == 1, "one trash, one entry"
    assert body["total"] == len(body["items"]) == len(entries)
    assert feed.headers["x-wp-total"] == str(body["total"])
    assert feed.headers["x-wp-totalpages"] == str(body["total_pages"]) == "1"
    paged = api.get("deletions", params={"since": since, "per_page": 1, "page": 2})
    assert paged.json()["items"] == body["items"][1:2]
    assert (
        paged.headers["x-wp-totalpages"] == str(paged.json()["total_pages"]) == str(body["total"])
    )
    keys = [(e["deleted_gmt"], e["id"], e["entity_type"]) for e in body["items"]]
    assert keys == sorted(keys)
    assert all(e["deleted_gmt"] > since for e in body["items"])
    # the trashed article is gone from its list and single endpoint; the moved one is an article now
    assert_error(api.get(f"articles/{trashed}"), 404, "association_sync_not_found")
    assert api.get(f"articles/{moved}").status_code == 200
    # exclusive `since`: the newest entry's own time excludes it
    newest = body["items"][-1]["deleted_gmt"]
    assert all(
        e["deleted_gmt"] > newest
        for e in api.get("deletions", params={"since": newest}).json()["items"]
    )
    assert_error(api.get("deletions", params={"since": "yesterday"}), 400, "rest_invalid_param")
    # restoring the trashed post brings it back with a newer modified_gmt
    real_wp.php(f"<?php wp_untrash_post( {trashed} );")
    restored = api.get(f"articles/{trashed}").json()
    assert restored["modified_gmt"] >= body["items"][0]["deleted_gmt"]


def test_list_answers_carry_the_types_deletions_since_deleted_since(real_wp, api):
    """Contract 1.1 (§5.6)."""
    # the previous test's deletions stay out of `since` (exclusive, 1 s steps)
    wait_for_the_next_wordpress_second(api)
    since = contract.format_gmt(
        contract.parse_gmt(api.get("ping").json()["server_time_gmt"]) - timedelta(seconds=1)
    )
    trashed = real_wp.create_post(post_type="event", post_title="Inline trash")
    deleted = real_wp.create_post(post_type="event", post_title="Inline delete")
    article = real_wp.create_post(post_title="Another type")
    real_wp.php(
        f"<?php wp_trash_post( {trashed} ); wp_delete_post( {deleted}, true ); "
        f"wp_trash_post( {article} );"
    )

    response = api.get("events", params={"deleted_since": since, "per_page": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [e["id"] for e in body["deleted"]] == sorted([trashed, deleted])  # events only
    assert all(e["deleted_gmt"] > since and len(e["deleted_gmt"]) == 19 for e in body["deleted"])
    assert body["deleted_more"] is False
    # The page itself is unchanged by the parameter.
    plain = api.get("events", params={"per_page": 1}).json()
    assert {k: v for k, v in body.items() if not k.startswith("deleted")} == plain
    assert "deleted" not in plain
    # Exclusive; independent of modified_after / after_id.
    newest = body["deleted"][-1]["deleted_gmt"]
    later = api.get(
        "events",
        params={"deleted_since": newest, "modified_after": "2099-01-01T00:00:00", "after_id": 1},
    ).json()
    assert (later["items"], later["deleted"], later["deleted_more"]) == ([], [], False)
    bad = assert_error(
        api.get("events", params={"deleted_since": "2024-11-30 10:00:00"}),
        400,
        "rest_invalid_param",
    )
    assert bad["data"]["details"]["deleted_since"]["code"] == "rest_invalid_date"


def test_inline_deletions_stop_at_100_with_a_flag(real_wp, api):
    cap = contract.MAX_INLINE_DELETIONS
    # Entries written straight into the log (the hooks have their own test), in a second of
    # their own, and removed afterwards so other tests' feeds do not see them.
    real_wp.php(
        f"""<?php
        global $wpdb;
        for ( $i = 1; $i <= {cap + 1}; $i++ ) {{
            $wpdb->insert( AA_Deletions::table(), array( 'entity_type' => 'notification',
                'object_id' => 900000 + $i, 'deleted_gmt' => '2098-01-01 00:00:00' ) );
        }}"""
    )
    try:
        body = api.get(
            "notifications", params={"deleted_since": "2097-12-31T23:59:59Z", "per_page": 1}
        ).json()
        assert [e["id"] for e in body["deleted"]] == [900000 + i for i in range(1, cap + 1)]
        assert body["deleted_more"] is True
        rest = api.get(
            "notifications", params={"deleted_since": "2097-12-31T23:59:59", "per_page": 1}
        ).json()
        assert rest["deleted"] == body["deleted"]
        real_wp.php(
            "<?php global $wpdb; $wpdb->delete( AA_Deletions::table(), "
            f"array( 'object_id' => {900000 + cap + 1} ) );"
        )
        exactly = api.get("notifications", params={"deleted_since": "2097-12-31T23:59:59"}).json()
        assert len(exactly["deleted"]) == cap and exactly["deleted_more"] is False
    finally:
        real_wp.php(
            '<?php global $wpdb; $wpdb->query( "DELETE FROM " . AA_Deletions::table() . '
            "\" WHERE deleted_gmt = '2098-01-01 00:00:00'\" );"
        )


# --- writes (§7) --------------------------------------------------------------------------


def test_put_updates_wordpress_and_bumps_modified(real_wp, api):
    event = real_wp.create_post(
        post_type="event",
        post_title="Put target",
        meta={
            "_association_event_start_gmt": "2025-01-01 10:00:00",
            "_association_event_venue": "Old hall",
        },
    )
    real_wp.set_post_modified(event, "2024-01-01 00:00:00")
    before = api.get(f"events/{event}").json()
    assert before["modified_gmt"] == "2024-01-01T00:00:00"
    response = api.put(
        f"events/{event}",
        json={
            "venue": "Hall B",
            "capacity": 180,
            "title": "Put target (moved)",
            "end_gmt": "2025-01-01T12:00:00Z",
            "address": {"city": "Bonn", "country": "DE"},
            "timezone": None,
            "if_unmodified_since": before["modified_gmt"],
        },
    )
    assert response.status_code == 200, response.text
    after = response.json()
    assert (
        after["venue"] == "Hall B"
        and after["capacity"] == 180
        and after["title"] == "Put target (moved)"
    )
    assert after["end_gmt"] == "2025-01-01T12:00:00"
    assert after["address"] == {"street": None, "city": "Bonn", "postcode": None, "country": "DE"}
    assert after["modified_gmt"] > before["modified_gmt"]
    assert after == api.get(f"events/{event}").json()
    stored = real_wp.php(
        f"""<?php echo wp_json_encode( array(
            get_post_meta( {event}, '_association_event_venue', true ),
            get_post_meta( {event}, '_association_event_end_gmt', true ),
            get_post( {event} )->post_title,
        ) );"""
    )
    assert stored == ["Hall B", "2025-01-01 12:00:00", "Put target (moved)"]
    # the edit shows up in an incremental pull like any other edit
    pulled = api.get("events", params={"modified_after": before["modified_gmt"]}).json()["items"]
    assert event in [i["id"] for i in pulled]
    # a PUT that changes nothing still bumps modified_gmt
    real_wp.set_post_modified(event, "2024-01-01 00:00:00")
    again = api.put(f"events/{event}", json={"venue": "Hall B"}).json()
    assert again["modified_gmt"] > "2024-01-01T00:00:00"


def test_put_stale_if_unmodified_since_is_409_and_writes_nothing(real_wp, api):
    note = real_wp.create_post(
        post_type="notification",
        post_title="Conflict target",
        meta={"_association_notification_priority": "low"},
    )
    current = api.get(f"notifications/{note}").json()
    response = api.put(
        f"notifications/{note}",
        json={"priority": "high", "if_unmodified_since": "2001-01-01T00:00:00"},
    )
    body = assert_error(response, 409, "association_sync_conflict")
    assert body["data"]["modified_gmt"] == current["modified_gmt"]
    assert body["data"]["current"] == current
    assert api.get(f"notifications/{note}").json()["priority"] == "low"
    # equal is not stale
    ok = api.put(
        f"notifications/{note}",
        json={"priority": "high", "if_unmodified_since": current["modified_gmt"] + "Z"},
    )
    assert ok.status_code == 200 and ok.json()["priority"] == "high"


def test_put_article_terms_and_rendered_content(real_wp, api):
    post = real_wp.create_post(post_title="Terms target", post_content="<p>x</p>")
    response = api.put(
        f"articles/{post}",
        json={
            "categories": ["News", "Brand new & shiny"],
            "tags": ["alpha", "beta, gamma"],
            "content": "Line one\n\nLine two",
            "status": "draft",
        },
    )
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["categories"] == ["Brand new &amp; shiny", "News"]
    assert record["tags"] == ["alpha", "beta, gamma"]
    assert record["content"] == "<p>Line one</p>\n<p>Line two</p>\n"
    assert record["status"] == "draft"
    cleared = api.put(f"articles/{post}", json={"categories": []}).json()
    assert cleared["categories"] == ["Uncategorized"]


def test_put_member_merges_address_and_bumps_modified(real_wp, api):
    user = real_wp.create_user("put.member", role="member")
    real_wp.php(
        f"""<?php
        update_user_meta( {user}, '_association_address_street', 'Old street 1' );
        update_user_meta( {user}, '_association_modified_gmt', '2024-01-01 00:00:00' );"""
    )
    assert api.get(f"members/{user}").json()["modified_gmt"] == "2024-01-01T00:00:00"
    response = api.put(
        f"members/{user}",
        json={
            "phone": "+49 1",
            "address": {"city": "Köln", "country": "DE"},
            "certifications": ["First aid"],
            "display_name": "Put Member",
            "last_name": None,
        },
    )
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["address"] == {
        "street": "Old street 1",
        "city": "Köln",
        "postcode": None,
        "country": "DE",
    }
    assert record["phone"] == "+49 1" and record["certifications"] == ["First aid"]
    assert record["display_name"] == "Put Member" and record["last_name"] is None
    assert record["modified_gmt"] > "2024-01-01T00:00:00"
    assert record["roles"] == ["member"]


def test_member_modified_follows_wordpress_edits(real_wp, api):
    alice = real_wp.manifest["members"]["alice"]
    real_wp.php(
        f"<?php update_user_meta( {alice}, '_association_modified_gmt', '2024-01-01 00:00:00' );"
    )
    assert api.get(f"members/{alice}").json()["modified_gmt"] == "2024-01-01T00:00:00"
    real_wp.php(
        f"<?php update_user_meta( {alice}, '_association_job_title', 'Head of Compliance' );"
    )
    assert api.get(f"members/{alice}").json()["modified_gmt"] == "2024-01-01T00:00:00", (
        "an unchanged value is no edit"
    )
    real_wp.php(
        f"""<?php
        ( new WP_User( {alice} ) )->add_role( 'member' );
        wp_update_user( array( 'ID' => {alice}, 'display_name' => 'Alice Müller' ) );"""
    )
    assert api.get(f"members/{alice}").json()["modified_gmt"] > "2024-01-01T00:00:00"


@pytest.mark.parametrize(
    ("endpoint", "body", "bad"),
    [
        ("events", {"slug": "x"}, "slug"),
        ("events", {"id": 5}, "id"),
        ("events", {"colour": "red"}, "colour"),
        ("events", {"title": None}, "title"),
        ("events", {"capacity": -1}, "capacity"),
        ("events", {"capacity": "12"}, "capacity"),
        ("events", {"start_gmt": "2025-01-01 10:00:00"}, "start_gmt"),
        ("events", {"timezone": "Mars/Olympus"}, "timezone"),
        ("events", {"registration_url": "ftp://example.org/x"}, "registration_url"),
        ("events", {"address": {"planet": "Earth"}}, "address"),
        ("events", {"address": {"country": "de"}}, "address"),
        ("events", {"status": "future"}, "status"),
        ("events", {"end_gmt": "2024-01-01T00:00:00"}, "end_gmt"),
        ("events", {}, "body"),
        ("articles", {"categories": "News"}, "categories"),
        ("articles", {"tags": [1]}, "tags"),
        ("conferences", {"country": "Germany"}, "country"),
        ("conferences", {"end_date": "2024-13-01"}, "end_date"),
        ("notifications", {"priority": "extreme"}, "priority"),
        ("documents", {"access_level": None}, "access_level"),
        ("members", {"email": "new@example.org"}, "email"),
        ("members", {"roles": ["administrator"]}, "roles"),
        ("events", {"venue": "x", "if_unmodified_since": "last week"}, "if_unmodified_since"),
    ],
)
def test_put_validation_errors(real_wp, api, endpoint, body, bad):
    ids = {
        "events": real_wp.manifest["events"]["agm"],
        "articles": real_wp.manifest["articles"]["filler1"],
        "conferences": real_wp.manifest["conferences"]["summit"],
        "notifications": real_wp.manifest["notifications"]["recall"],
        "documents": real_wp.manifest["documents"]["minutes"],
        "members": real_wp.manifest["members"]["dave"],
    }
    before = api.get(f"{endpoint}/{ids[endpoint]}").json()
    response = api.put(f"{endpoint}/{ids[endpoint]}", json=body)
    error = assert_error(response, 400, "rest_invalid_param")
    assert bad in error["data"]["params"], error
    assert api.get(f"{endpoint}/{ids[endpoint]}").json() == before, "a refused PUT writes nothing"


def test_put_bad_json_and_unknown_record(real_wp, api):
    agm = real_wp.manifest["events"]["agm"]
    headers = {"Content-Type": "application/json"}
    assert_error(
        api.put(f"events/{agm}", content=b"{not json", headers=headers), 400, "rest_invalid_json"
    )
    assert_error(
        api.put(f"events/{agm}", content=b"[1, 2]", headers=headers), 400, "rest_invalid_json"
    )
    assert_error(api.put("events/999999", json={"venue": "x"}), 404, "association_sync_not_found")
    huge = api.put(f"events/{agm}", json={"venue": "x" * (1024 * 1024)})
    assert "body" in assert_error(huge, 400, "rest_invalid_param")["data"]["params"]
    # validation (5) comes before existence (6)
    assert_error(api.put("events/999999", json={"venue": 5}), 400, "rest_invalid_param")
    assert_error(
        api.put(f"events/{agm}", json={"venue": "x"}, key=False),
        401,
        "association_sync_missing_key",
    )


def test_a_new_draft_has_a_real_modified_time_and_reaches_incremental_pulls(real_wp, api):
    cutoff = contract.format_gmt(
        contract.parse_gmt(api.get("ping").json()["server_time_gmt"]) - timedelta(seconds=1)
    )
    draft = real_wp.create_post(
        post_type="conference", post_title="Draft conference", post_status="draft"
    )
    record = api.get(f"conferences/{draft}").json()
    assert record["date_gmt"] is None
    assert record["modified_gmt"] > cutoff
    pulled = api.get("conferences", params={"modified_after": cutoff}).json()["items"]
    assert draft in [i["id"] for i in pulled]
    assert pulled[-1]["id"] == draft, "the newest record comes last"


# --- the harness itself -------------------------------------------------------------------


def test_the_harness_sees_php_warnings_of_the_server_and_of_cli_runs(real_wp):
    """The autouse check (conftest.no_php_problems) relies on this: a warning raised while
    serving a request or in a CLI run lands in the error log and is reported, and so is an
    answer with a 5xx status."""
    probe = real_wp.docroot / "harness-warning-probe.php"
    probe.write_text(
        "<?php trigger_error( 'harness probe from php -S', E_USER_WARNING );"
        " http_response_code( empty( $_GET['fail'] ) ? 200 : 500 ); echo 1;"
    )
    try:
        assert httpx.get(real_wp.url + "/harness-warning-probe.php").status_code == 200
        failed = httpx.get(real_wp.url + "/harness-warning-probe.php", params={"fail": 1})
        assert failed.status_code == 500
    finally:
        probe.unlink()
    real_wp.php(
        "<?php $undefined = array(); echo wp_json_encode( $undefined['missing'] ?? null );"
        " trigger_error( 'harness probe from the CLI', E_USER_NOTICE );"
    )
    problems = real_wp.take_php_problems()
    assert any("PHP Warning:  harness probe from php -S" in line for line in problems), problems
    assert any("PHP Notice:  harness probe from the CLI" in line for line in problems), problems
    assert any("[500]: GET /harness-warning-probe.php?fail=1" in line for line in problems), (
        problems
    )
    assert real_wp.take_php_problems() == [], "taken problems are not reported twice"

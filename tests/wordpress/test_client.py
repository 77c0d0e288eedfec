"""Unit tests of the WordPress client: every error path, with httpx faked by respx."""

import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from connectors.wordpress import contract
from connectors.wordpress.client import WordPressClient
from connectors.wordpress.errors import (
    AuthenticationFailed,
    BadRequest,
    BlockedAddress,
    InvalidResponse,
    PluginMissing,
    RateLimited,
    RecordNotFound,
    RedirectRefused,
    RequestTimedOut,
    ResponseTooLarge,
    ServerError,
    SiteUnreachable,
    SyncDisabled,
    TLSFailure,
    UnsupportedContractVersion,
    WordPressError,
    WriteConflict,
)

from .conftest import KEY, SITE

API = f"{SITE}/api/v1/sync/"
PING = {
    "plugin": "association-app",
    "plugin_version": "1.0.0",
    "contract_version": 1,
    "site_name": "Example",
    "entity_types": list(contract.ENTITY_TYPES),
    "max_per_page": 100,
}


def error(status, code, message="x", **data):
    return httpx.Response(
        status, json={"code": code, "message": message, "data": {"status": status, **data}}
    )


def record(rid, modified="2024-11-01T10:00:00", **extra):
    return {"id": rid, "modified_gmt": modified, "title": f"Record {rid}", **extra}


def list_body(items, total=None, per_page=100, page=1):
    total = len(items) if total is None else total
    pages = -(-total // per_page)
    return httpx.Response(
        200,
        json={
            "items": items,
            "page": page,
            "per_page": per_page,
            "total": total,
            "total_pages": pages,
        },
        headers={contract.TOTAL_HEADER: str(total), contract.TOTAL_PAGES_HEADER: str(pages)},
    )


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False) as router:
        yield router


# --- success paths ---------------------------------------------------------------


def test_ping_sends_the_key_header_and_returns_site_info(mock, client):
    route = mock.get(API + "ping").respond(200, json=PING)
    assert client.ping()["site_name"] == "Example"
    sent = route.calls.last.request
    assert sent.headers[contract.KEY_HEADER] == KEY
    assert sent.headers["accept"] == "application/json"
    assert "AssociationPlatform" in sent.headers["user-agent"]
    assert client.request_count == 1


def test_ping_refuses_another_contract_version(mock, client):
    mock.get(API + "ping").respond(200, json={**PING, "contract_version": 2})
    with pytest.raises(UnsupportedContractVersion, match="contract version 2"):
        client.ping()


def test_ping_without_entity_types_is_invalid(mock, client):
    mock.get(API + "ping").respond(200, json={**PING, "entity_types": "article"})
    with pytest.raises(InvalidResponse, match="entity_types"):
        client.ping()


def test_key_never_appears_in_repr_or_errors(mock, client):
    # A broken site echoes the request headers into its error page.
    mock.get(API + "ping").respond(500, text=f"<pre>X-Association-Sync-Key: {KEY}</pre>")
    with pytest.raises(ServerError) as excinfo:
        client.ping()
    assert KEY not in str(excinfo.value)
    assert KEY not in repr(excinfo.value)
    assert "[sync key]" in str(excinfo.value)
    assert KEY not in repr(client)


# --- authentication, plugin presence ----------------------------------------------


def test_invalid_key_is_authentication_failed_with_the_fix(mock, client):
    mock.get(API + "ping").mock(return_value=error(401, "association_sync_invalid_key"))
    with pytest.raises(AuthenticationFailed) as excinfo:
        client.ping()
    err = excinfo.value
    assert err.status_code == 401
    assert err.code == "association_sync_invalid_key"
    assert not err.retryable
    assert "WP Admin → Settings → Association App" in err.message
    assert "regenerate" in err.message
    assert len(mock.calls) == 1  # 401 is never retried


def test_missing_key_mentions_proxies_stripping_the_header(mock, client):
    mock.get(API + "ping").mock(return_value=error(401, "association_sync_missing_key"))
    with pytest.raises(AuthenticationFailed, match="strips the X-Association-Sync-Key"):
        client.ping()


def test_401_not_from_the_plugin_points_at_http_auth(mock, client):
    mock.get(API + "ping").respond(401, text="<h1>Authorization Required</h1>")
    with pytest.raises(AuthenticationFailed, match="not from the Association App plugin"):
        client.ping()


def test_sync_disabled(mock, client):
    mock.get(API + "ping").mock(return_value=error(403, "association_sync_disabled"))
    with pytest.raises(SyncDisabled, match="switched off in the plugin settings"):
        client.ping()


def test_403_from_a_firewall_is_bad_request(mock, client):
    mock.get(API + "ping").respond(403, text="<html>Blocked by WAF</html>")
    with pytest.raises(BadRequest, match="Blocked by WAF"):
        client.ping()


def test_html_404_means_plugin_missing_or_permalinks(mock, client):
    mock.get(API + "ping").respond(404, text="<html><body>Page not found</body></html>")
    with pytest.raises(PluginMissing) as excinfo:
        client.ping()
    assert "Settings → Permalinks" in excinfo.value.message
    assert "not installed" in excinfo.value.message
    assert excinfo.value.code is None


def test_rest_no_route_is_plugin_missing(mock, client):
    mock.get(API + "events").mock(return_value=error(404, "rest_no_route"))
    with pytest.raises(PluginMissing, match="rest_no_route"):
        next(client.iter_pages("event"))


def test_record_not_found(mock, client):
    mock.get(API + "events/65").mock(
        return_value=error(404, "association_sync_not_found", "No event with id 65.")
    )
    with pytest.raises(RecordNotFound, match="No event with id 65"):
        client.get_record("event", 65)
    assert len(mock.calls) == 1


def test_bad_request_reports_the_sites_params(mock, client):
    mock.put(API + "events/5").mock(
        return_value=error(400, "rest_invalid_param", params={"capacity": "capacity must be >= 0"})
    )
    with pytest.raises(BadRequest) as excinfo:
        client.push_record("event", 5, {"capacity": -1})
    assert excinfo.value.params == {"capacity": "capacity must be >= 0"}
    assert "capacity must be >= 0" in excinfo.value.message
    assert len(mock.calls) == 1


def test_other_4xx_is_bad_request(mock, client):
    mock.get(API + "ping").respond(418, json={"code": "teapot", "message": "I am a teapot"})
    with pytest.raises(BadRequest, match="I am a teapot"):
        client.ping()


# --- retries -----------------------------------------------------------------------


def test_429_waits_retry_after_then_succeeds(mock, client, sleeps):
    mock.get(API + "ping").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json={"code": "x", "data": {}}),
            httpx.Response(200, json=PING),
        ]
    )
    assert client.ping()["plugin"] == "association-app"
    assert sleeps == [7.0]
    assert client.request_count == 2


def test_retry_after_as_http_date_and_capped(mock, make_client, sleeps):
    client = make_client(max_retries=2)
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    mock.get(API + "ping").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": soon}),
            httpx.Response(429, headers={"Retry-After": "86400"}),
            httpx.Response(200, json=PING),
        ]
    )
    client.ping()
    assert 15 <= sleeps[0] <= 20
    assert sleeps[1] == 300.0  # contract §12 cap


def test_429_forever_is_rate_limited_after_retries(mock, make_client, sleeps):
    client = make_client(max_retries=3)
    mock.get(API + "ping").respond(429, headers={"Retry-After": "2"})
    with pytest.raises(RateLimited) as excinfo:
        client.ping()
    assert excinfo.value.retry_after == 2.0
    assert excinfo.value.retryable
    assert "after 4 attempts" in excinfo.value.message
    assert len(mock.calls) == 4
    assert sleeps == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_with_exponential_backoff_then_server_error(
    mock, make_client, sleeps, status
):
    client = make_client(max_retries=4, backoff_base=1.0)
    mock.get(API + "ping").respond(status, text="<html>Bad gateway</html>")
    with pytest.raises(ServerError) as excinfo:
        client.ping()
    assert excinfo.value.status_code == status
    assert "Bad gateway" in excinfo.value.message
    assert len(mock.calls) == 5
    for attempt, delay in enumerate(sleeps):  # 1, 2, 4, 8 s with ±20 % jitter
        assert 0.8 * 2**attempt <= delay <= 1.2 * 2**attempt


def test_backoff_is_capped(mock, make_client, sleeps):
    client = make_client(max_retries=5, backoff_base=10, backoff_max=15)
    mock.get(API + "ping").respond(502)
    with pytest.raises(ServerError):
        client.ping()
    assert max(sleeps) <= 15 * 1.2


def test_transient_500_then_success(mock, client, sleeps):
    mock.get(API + "ping").mock(
        side_effect=[error(500, "association_sync_internal_error"), httpx.Response(200, json=PING)]
    )
    assert client.ping()["contract_version"] == 1
    assert len(sleeps) == 1


def test_connection_refused_is_site_unreachable_after_retries(mock, make_client, sleeps):
    client = make_client(max_retries=2)
    mock.get(API + "ping").mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(SiteUnreachable) as excinfo:
        client.ping()
    assert "Connection refused" in excinfo.value.message
    assert "after 3 attempts" in excinfo.value.message
    assert len(mock.calls) == 3


def test_connection_reset_is_site_unreachable(mock, make_client):
    client = make_client(max_retries=1)
    mock.get(API + "ping").mock(side_effect=httpx.ReadError("Connection reset by peer"))
    with pytest.raises(SiteUnreachable, match="closed or reset"):
        client.ping()


def test_timeouts(mock, make_client):
    client = make_client(max_retries=1, timeout=12, connect_timeout=3)
    mock.get(API + "ping").mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(RequestTimedOut, match="within 12 s"):
        client.ping()
    mock.get(API + "events").mock(side_effect=httpx.ConnectTimeout("timed out"))
    with pytest.raises(RequestTimedOut, match=r"to wp\.example\.org timed out after 3 s"):
        next(client.iter_pages("event"))


def test_tls_failure_is_not_retried(mock, client):
    mock.get(API + "ping").mock(
        side_effect=httpx.ConnectError(
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
        )
    )
    with pytest.raises(TLSFailure, match="certificate") as excinfo:
        client.ping()
    assert not excinfo.value.retryable
    assert len(mock.calls) == 1


def test_400_401_403_404_409_are_never_retried(mock, client, sleeps):
    for status in (400, 401, 403, 404, 409):
        mock.get(API + "ping").mock(return_value=error(status, "some_code"))
        with pytest.raises(WordPressError):
            client.ping()
    assert sleeps == []
    assert len(mock.calls) == 5


# --- invalid responses -------------------------------------------------------------


def test_html_200_is_invalid_response(mock, client):
    mock.get(API + "ping").respond(200, text="<!DOCTYPE html><html><title>Hello</title></html>")
    with pytest.raises(InvalidResponse, match="HTML page"):
        client.ping()


@pytest.mark.parametrize(
    "tail",
    ['"password_protected":false', '"password_protected":fa', '"author_id":nu'],
    ids=["after-a-literal", "inside-false", "inside-null"],
)
def test_a_body_cut_after_non_ascii_text_is_reported_truncated(mock, client, tail):
    """The cut's position is counted in characters and the body in bytes: with Cyrillic
    titles before the cut, a cut after or inside a literal was reported as a JSON syntax
    error in the middle of the body."""
    body = '{"items":[{"id":1,"title":"Новости ассоциации Новости ассоциации",' + tail
    mock.get(API + "ping").respond(200, content=body.encode(), content_type="application/json")
    with pytest.raises(InvalidResponse, match="truncated"):
        client.ping()


def test_a_syntax_error_in_the_middle_names_its_character(mock, client):
    body = '{"site_name": "Ассоциация" "x", "plugin": "association-app", "more": "' + "y" * 50
    body += '"}'
    mock.get(API + "ping").respond(200, content=body.encode(), content_type="application/json")
    with pytest.raises(InvalidResponse, match="Expecting ',' delimiter at character 27"):
        client.ping()


def test_truncated_json_is_invalid_response(mock, client):
    body = json.dumps(PING)[:40]
    mock.get(API + "ping").respond(200, content=body.encode(), content_type="application/json")
    with pytest.raises(InvalidResponse, match="truncated"):
        client.ping()


def test_json_array_is_invalid_response(mock, client):
    mock.get(API + "ping").respond(200, json=[1, 2])
    with pytest.raises(InvalidResponse, match="not an object"):
        client.ping()


def test_empty_body_is_invalid_response(mock, client):
    mock.get(API + "ping").respond(200, content=b"")
    with pytest.raises(InvalidResponse, match="empty"):
        client.ping()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"items": {}, "page": 1, "per_page": 100, "total": 0, "total_pages": 0}, "not a list"),
        ({"items": [], "page": 1, "per_page": 100, "total": "3", "total_pages": 1}, "'total'"),
        ({"items": [], "page": 1, "per_page": 100, "total": True, "total_pages": 1}, "'total'"),
        ({"items": [], "page": 1, "per_page": 100, "total": 250, "total_pages": 2}, "disagree"),
        ({"items": [record(1)], "page": 1, "per_page": 100, "total": 0, "total_pages": 0}, "total"),
        ({"items": ["x"], "page": 1, "per_page": 100, "total": 1, "total_pages": 1}, "item 0"),
        ({"items": [{"id": "7"}], "page": 1, "per_page": 100, "total": 1, "total_pages": 1}, "id"),
        (
            {
                "items": [{"id": 7, "modified_gmt": "2024-11-01 10:00:00"}],
                "page": 1,
                "per_page": 100,
                "total": 1,
                "total_pages": 1,
            },
            "modified_gmt",
        ),
    ],
)
def test_list_shape_errors(mock, client, body, reason):
    mock.get(API + "articles").respond(200, json=body)
    with pytest.raises(InvalidResponse, match=reason):
        next(client.iter_pages("article"))


def test_header_total_disagreeing_with_body_is_invalid(mock, client):
    response = list_body([record(1)])
    response.headers[contract.TOTAL_HEADER] = "99"
    mock.get(API + "articles").mock(return_value=response)
    with pytest.raises(InvalidResponse, match="X-WP-Total: 99"):
        next(client.iter_pages("article"))


# --- response size -----------------------------------------------------------------


def test_declared_oversize_body_is_refused(mock, make_client):
    client = make_client(max_response_bytes=1000)
    mock.get(API + "ping").respond(200, content=b"{" + b" " * 2000 + b"}")
    with pytest.raises(ResponseTooLarge, match="2,002 bytes, over the 1,000-byte limit"):
        client.ping()


class Chunks(httpx.SyncByteStream):
    def __init__(self, chunks):
        self.chunks = chunks
        self.sent = 0

    def __iter__(self):
        for chunk in self.chunks:
            self.sent += 1
            yield chunk


def test_streamed_oversize_body_stops_reading_at_the_cap(mock, make_client):
    client = make_client(max_response_bytes=10_000)
    stream = Chunks([b"x" * 4096] * 1000)  # 4 MB, no Content-Length
    mock.get(API + "ping").mock(return_value=httpx.Response(200, stream=stream))
    with pytest.raises(ResponseTooLarge, match="reading stopped"):
        client.ping()
    assert stream.sent <= 4


def test_too_large_page_is_retried_with_half_the_page_size(mock, make_client):
    client = make_client(max_response_bytes=5000)
    big = "y" * 1500

    def respond(request):
        per_page = int(request.url.params["per_page"])
        items = [record(i, content=big) for i in range(1, per_page + 1)]
        return list_body(items[:per_page], total=per_page, per_page=per_page)

    mock.get(API + "articles").mock(side_effect=respond)
    pages = list(client.iter_pages("article", per_page=8))
    sizes = [int(c.request.url.params["per_page"]) for c in mock.calls]
    assert sizes == [8, 4, 2]
    assert pages[0].per_page == 2
    assert pages[0].request_count == 3


def test_single_oversized_record_is_skipped_and_reported(mock, make_client):
    client = make_client(max_response_bytes=3000)
    huge = record(5, "2024-11-01T10:00:05", content="z" * 5000)

    def respond(request):
        after = request.url.params.get("after_id")
        if after is None:
            return list_body([huge], total=2, per_page=1)
        return list_body([record(6, "2024-11-01T10:00:06")], total=1, per_page=1)

    mock.get(API + "articles").mock(side_effect=respond)
    pages = list(client.iter_pages("article", per_page=1))
    assert pages[0].skipped[0]["id"] == 5
    assert "larger than" in pages[0].skipped[0]["error"]
    assert [item["id"] for item in pages[1].items] == [6]
    assert mock.calls.last.request.url.params["after_id"] == "5"
    assert mock.calls.last.request.url.params["modified_after"] == "2024-11-01T10:00:05"


# --- paging ------------------------------------------------------------------------


def test_iter_pages_uses_the_keyset_cursor(mock, client):
    rows = [record(i, f"2024-11-01T10:00:{i // 2:02d}") for i in range(1, 6)]

    def respond(request):
        params = request.url.params
        per_page = int(params["per_page"])
        after_t = params.get("modified_after")
        after_id = int(params.get("after_id", 0))
        chosen = [
            r
            for r in rows
            if after_t is None
            or r["modified_gmt"] > after_t
            or (r["modified_gmt"] == after_t and r["id"] > after_id)
        ]
        return list_body(chosen[:per_page], total=len(chosen), per_page=per_page)

    mock.get(API + "articles").mock(side_effect=respond)
    since = datetime(2024, 1, 1, tzinfo=UTC)
    pages = list(client.iter_pages("article", modified_after=since, per_page=2))
    assert [r["id"] for p in pages for r in p.items] == [1, 2, 3, 4, 5]
    params = [dict(c.request.url.params) for c in mock.calls]
    assert params[0] == {"per_page": "2", "modified_after": "2024-01-01T00:00:00"}
    assert params[1] == {"per_page": "2", "modified_after": "2024-11-01T10:00:01", "after_id": "2"}
    assert "page" not in params[2]
    assert all(p.request_count == 1 for p in pages)


def test_iter_pages_stops_on_an_empty_first_page(mock, client):
    mock.get(API + "members").mock(return_value=list_body([]))
    pages = list(client.iter_pages("member"))
    assert len(pages) == 1
    assert pages[0].items == []
    assert pages[0].total == 0


def test_a_site_ignoring_after_id_cannot_loop_forever(mock, client):
    mock.get(API + "articles").mock(
        return_value=list_body([record(1), record(2)], total=4, per_page=2)
    )
    iterator = client.iter_pages("article", per_page=2)
    next(iterator)
    with pytest.raises(InvalidResponse, match="keyset"):
        next(iterator)


def test_unknown_entity_type_and_bad_per_page(client):
    with pytest.raises(ValueError):
        next(client.iter_pages("post"))
    with pytest.raises(ValueError):
        next(client.iter_pages("article", per_page=101))


def test_iter_deletions_pages_by_number(mock, client):
    entries = [
        {"entity_type": "article", "id": i, "deleted_gmt": f"2024-11-29T10:00:{i:02d}"}
        for i in range(1, 6)
    ]

    def respond(request):
        page = int(request.url.params["page"])
        per_page = int(request.url.params["per_page"])
        chunk = entries[(page - 1) * per_page : page * per_page]
        return list_body(chunk, total=len(entries), per_page=per_page, page=page)

    mock.get(API + "deletions").mock(side_effect=respond)
    since = datetime(2024, 11, 29, 9, 0, tzinfo=UTC)
    pages = list(client.iter_deletions(since, per_page=2))
    assert [e["id"] for p in pages for e in p.items] == [1, 2, 3, 4, 5]
    assert [c.request.url.params["page"] for c in mock.calls] == ["1", "2", "3"]
    assert mock.calls[0].request.url.params["since"] == "2024-11-29T09:00:00"


def test_deletion_entry_without_entity_type_is_invalid(mock, client):
    mock.get(API + "deletions").mock(
        return_value=list_body([{"id": 1, "deleted_gmt": "2024-11-29T10:00:00"}])
    )
    with pytest.raises(InvalidResponse, match="entity_type"):
        next(client.iter_deletions(None))


def _with_deleted(response, **keys):
    body = json.loads(response.content) | keys
    return httpx.Response(200, json=body, headers=dict(response.headers))


def test_inline_deletions_are_asked_on_the_first_request_only(mock, client):
    since = datetime(2024, 11, 29, 9, 0, tzinfo=UTC)
    deleted = [{"id": 7, "deleted_gmt": "2024-11-29T10:00:00"}]
    route = mock.get(API + "articles").mock(
        side_effect=[
            _with_deleted(
                list_body([record(1)], total=2, per_page=1), deleted=deleted, deleted_more=True
            ),
            list_body([record(2, "2024-11-02T10:00:00")], total=1, per_page=1),
        ]
    )
    first, second = client.iter_pages("article", per_page=1, deleted_since=since)
    assert (first.deleted, first.deleted_more) == (deleted, True)
    assert (second.deleted, second.deleted_more) == (None, False)
    assert route.calls[0].request.url.params["deleted_since"] == "2024-11-29T09:00:00"
    assert "deleted_since" not in route.calls[1].request.url.params


def test_a_site_without_inline_deletions_answers_none(mock, client):
    mock.get(API + "articles").mock(return_value=list_body([record(1)]))
    page = next(client.iter_pages("article", deleted_since=datetime(2024, 1, 1, tzinfo=UTC)))
    assert page.deleted is None and page.deleted_more is False


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ({"deleted": {"id": 1}}, "'deleted' is dict, not a list"),
        ({"deleted": [{"id": "1", "deleted_gmt": "2024-11-29T10:00:00"}]}, "no integer 'id'"),
        ({"deleted": [{"id": 1, "deleted_gmt": "2024-11-29 10:00"}]}, "invalid 'deleted_gmt'"),
        ({"deleted": [], "deleted_more": "yes"}, "'deleted_more' is 'yes', not true or false"),
        (
            {"deleted": [{"id": i, "deleted_gmt": "2024-11-29T10:00:00"} for i in range(101)]},
            "'deleted' has 101 entries, more than the 100 allowed",
        ),
    ],
)
def test_malformed_inline_deletions_are_invalid(mock, client, keys, reason):
    mock.get(API + "articles").mock(return_value=_with_deleted(list_body([]), **keys))
    with pytest.raises(InvalidResponse, match=re.escape(reason)):
        next(client.iter_pages("article", deleted_since=datetime(2024, 1, 1, tzinfo=UTC)))


# --- the change log (contract 1.2, §5.7) ---------------------------------------------------

CHANGE_KEYS = {"server_time_gmt": "2024-11-30T11:00:00", "change_seq": 42}


def test_the_change_log_is_asked_on_the_first_request_and_read_from_the_answer(mock, client):
    route = mock.get(API + "articles").mock(
        side_effect=[
            _with_deleted(
                list_body([record(1)], total=2, per_page=1),
                **CHANGE_KEYS,
                changed=[5, 9],
                changed_next=40,
                changed_more=True,
                change_log_from=3,
            ),
            _with_deleted(list_body([record(2, "2024-11-02T10:00:00")], per_page=1), **CHANGE_KEYS),
        ]
    )
    first, second = client.iter_pages("article", per_page=1, changes_after=30)
    assert (first.changed, first.changed_next, first.changed_more) == ([5, 9], 40, True)
    assert (first.change_seq, first.change_log_from) == (42, 3)
    assert first.server_time == datetime(2024, 11, 30, 11, 0, tzinfo=UTC)
    assert second.changed is None and second.change_seq == 42
    assert route.calls[0].request.url.params["changes_after"] == "30"
    assert "changes_after" not in route.calls[1].request.url.params


def test_an_older_plugin_answers_no_clock_and_no_change_log(mock, client):
    mock.get(API + "articles").mock(return_value=list_body([record(1)]))
    page = next(client.iter_pages("article", changes_after=0))
    assert (page.server_time, page.change_seq, page.changed) == (None, None, None)


def test_fetch_changed_asks_for_the_ids_and_the_next_entries(mock, client):
    route = mock.get(API + "members").mock(
        return_value=_with_deleted(
            list_body([record(5)]), **CHANGE_KEYS, changed=[], changed_next=42, changed_more=False
        )
    )
    page = client.fetch_changed("member", [5, 9], changes_after=40)
    assert [item["id"] for item in page.items] == [5] and page.changed == []
    params = route.calls.last.request.url.params
    assert (params["include"], params["changes_after"], params["per_page"]) == ("5,9", "40", "100")
    client.fetch_changed("member", [])
    assert route.calls.last.request.url.params["include"] == ""
    with pytest.raises(ValueError):
        client.fetch_changed("member", list(range(1, 102)))


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ({"server_time_gmt": "yesterday"}, "'server_time_gmt' is 'yesterday', not a GMT time"),
        ({"change_seq": -1}, "'change_seq' is -1, not a non-negative integer"),
        ({"changed": [1, "2"], "changed_next": 3}, "'changed' is not a list of record ids"),
        ({"changed": [1]}, "'changed' comes without 'changed_next'"),
        ({"changed": [], "changed_next": 1, "changed_more": 1}, "'changed_more' is 1"),
        ({"changed": list(range(1, 102)), "changed_next": 1}, "'changed' has 101 ids"),
    ],
)
def test_malformed_change_log_keys_are_invalid(mock, client, keys, reason):
    mock.get(API + "articles").mock(return_value=_with_deleted(list_body([]), **keys))
    with pytest.raises(InvalidResponse, match=re.escape(reason)):
        next(client.iter_pages("article", changes_after=0))


# --- writes ------------------------------------------------------------------------


def test_push_record_sends_a_partial_body_with_the_precondition(mock, client):
    route = mock.put(API + "events/812").respond(200, json=record(812, venue="Hall B"))
    since = datetime(2024, 11, 28, 9, 15, tzinfo=UTC)
    result = client.push_record("event", 812, {"venue": "Hall B"}, if_unmodified_since=since)
    assert result["venue"] == "Hall B"
    sent = route.calls.last.request
    assert json.loads(sent.content) == {
        "venue": "Hall B",
        "if_unmodified_since": "2024-11-28T09:15:00",
    }
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers[contract.KEY_HEADER] == KEY


def test_push_conflict_carries_the_current_record(mock, client):
    current = record(812, "2024-11-29T16:40:12", venue="Hall C")
    mock.put(API + "events/812").mock(
        return_value=error(
            409, "association_sync_conflict", modified_gmt="2024-11-29T16:40:12", current=current
        )
    )
    with pytest.raises(WriteConflict) as excinfo:
        client.push_record("event", 812, {"venue": "Hall B"})
    assert excinfo.value.current_record == current
    assert excinfo.value.modified_gmt == "2024-11-29T16:40:12"
    assert "2024-11-29T16:40:12" in excinfo.value.message


def test_put_is_not_retried_on_500(mock, client):
    mock.put(API + "events/1").mock(return_value=error(500, "association_sync_internal_error"))
    with pytest.raises(ServerError):
        client.push_record("event", 1, {"venue": "x"})
    assert len(mock.calls) == 1


def test_put_is_retried_on_503_with_retry_after(mock, client, sleeps):
    mock.put(API + "events/1").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "3"}),
            httpx.Response(200, json=record(1)),
        ]
    )
    client.push_record("event", 1, {"venue": "x"})
    assert sleeps == [3.0]


def test_put_after_timeout_accepts_409_showing_its_own_write(mock, client):
    current = record(1, "2024-11-30T10:00:00", venue="Hall B")
    mock.put(API + "events/1").mock(
        side_effect=[
            httpx.ReadTimeout("timed out"),
            error(
                409,
                "association_sync_conflict",
                modified_gmt="2024-11-30T10:00:00",
                current=current,
            ),
        ]
    )
    since = datetime(2024, 11, 1, tzinfo=UTC)
    assert client.push_record("event", 1, {"venue": "Hall B"}, if_unmodified_since=since) == current


def test_put_never_follows_redirects(mock, client):
    mock.put(API + "events/1").respond(301, headers={"Location": "https://www.wp.example.org/x"})
    with pytest.raises(RedirectRefused, match="fix the connector's site URL"):
        client.push_record("event", 1, {"venue": "x"})


# --- redirects ---------------------------------------------------------------------


def test_get_follows_redirects_and_keeps_the_key_on_the_same_host(mock, client):
    mock.get(API + "ping").respond(301, headers={"Location": "/wp/api/v1/sync/ping"})
    final = mock.get(f"{SITE}/wp/api/v1/sync/ping").respond(200, json=PING)
    client.ping()
    assert final.calls.last.request.headers[contract.KEY_HEADER] == KEY
    assert client.request_count == 2


def test_key_is_not_sent_to_another_host(mock, client):
    mock.get(API + "ping").respond(302, headers={"Location": "https://elsewhere.example.com/p"})
    other = mock.get("https://elsewhere.example.com/p").respond(200, json=PING)
    client.ping()
    assert contract.KEY_HEADER.lower() not in other.calls.last.request.headers


def test_too_many_redirects(mock, client):
    for i in range(7):
        mock.get(f"{SITE}/r{i}").respond(302, headers={"Location": f"/r{i + 1}"})
    mock.get(API + "ping").respond(302, headers={"Location": "/r0"})
    with pytest.raises(RedirectRefused, match="more than 5"):
        client.ping()
    assert len(mock.calls) == 6


def test_redirect_to_a_private_address_is_blocked(mock, make_client):
    def resolver(host, port):
        return {"wp.example.org": ["93.184.216.34"], "internal.example.org": ["10.0.0.5"]}[host]

    client = make_client(resolver=resolver)
    mock.get(API + "ping").respond(302, headers={"Location": "http://internal.example.org/admin"})
    internal = mock.get("http://internal.example.org/admin").respond(200, json=PING)
    with pytest.raises(BlockedAddress, match="private network"):
        client.ping()
    assert not internal.called


def test_redirect_to_metadata_ip_literal_is_blocked(mock, client):
    mock.get(API + "ping").respond(302, headers={"Location": "http://169.254.169.254/latest/"})
    with pytest.raises(BlockedAddress, match="metadata"):
        client.ping()


# --- diagnostics helpers -------------------------------------------------------------


def test_probe_returns_401_and_404_without_raising(mock, client):
    mock.get(API + "ping").mock(return_value=error(401, "association_sync_missing_key"))
    response = client.probe("api/v1/sync/ping", with_key=False)
    assert response.status_code == 401
    assert response.json()["code"] == "association_sync_missing_key"
    assert contract.KEY_HEADER.lower() not in mock.calls.last.request.headers
    mock.get(f"{SITE}/wp-json/").respond(404, text="<html>nope</html>")
    assert client.probe("wp-json/").status_code == 404


def test_probe_with_key(mock, client):
    mock.get(API + "ping").respond(200, json=PING)
    response = client.probe("api/v1/sync/ping", with_key=True)
    assert mock.calls.last.request.headers[contract.KEY_HEADER] == KEY
    assert response.json()["plugin"] == "association-app"


def test_check_reachable_accepts_any_http_status(mock, client):
    mock.get(f"{SITE}/").respond(500)
    assert client.check_reachable() >= 0


def test_check_reachable_raises_typed_errors(mock, client):
    mock.get(f"{SITE}/").mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(SiteUnreachable):
        client.check_reachable()
    assert len(mock.calls) == 1  # diagnostics want one quick answer, no retries


def test_rest_index_falls_back_to_rest_route(mock, client):
    mock.get(f"{SITE}/wp-json/").respond(200, text="<html>theme page</html>")
    mock.get(f"{SITE}/", params={"rest_route": "/"}).respond(200, json={"namespaces": ["wp/v2"]})
    assert client.get_rest_index() == {"namespaces": ["wp/v2"]}
    assert contract.KEY_HEADER.lower() not in mock.calls.last.request.headers


def test_rest_index_failure_explains(mock, client):
    mock.get(url__startswith=f"{SITE}/").respond(404, text="<html>404</html>")
    with pytest.raises(InvalidResponse, match="REST API"):
        client.get_rest_index()


def test_invalid_site_urls_are_refused():
    for url in ("ftp://wp.example.org", "javascript:alert(1)", "wp.example.org", ""):
        with pytest.raises(BlockedAddress):
            WordPressClient(url, KEY)


def test_dns_failure_is_site_unreachable(mock, make_client):
    import socket

    def resolver(host, port):
        raise socket.gaierror(-2, "Name or service not known")

    client = make_client(resolver=resolver)
    with pytest.raises(SiteUnreachable, match="could not be resolved"):
        client.ping()
    assert not mock.calls


def test_page_size_grows_back_after_an_oversized_record(mock, make_client):
    client = make_client(max_response_bytes=4000)
    rows = [record(i, f"2024-11-01T10:00:{i:02d}") for i in range(1, 41)]
    rows[2]["content"] = "z" * 5000  # record 3 alone is over the cap

    def respond(request):
        params = request.url.params
        per_page = int(params["per_page"])
        after = (params.get("modified_after", ""), int(params.get("after_id", -1)))
        chosen = [r for r in rows if (r["modified_gmt"], r["id"]) > after]
        return list_body(chosen[:per_page], total=len(chosen), per_page=per_page)

    mock.get(API + "articles").mock(side_effect=respond)
    pages = list(client.iter_pages("article", per_page=8))
    delivered = [i["id"] for p in pages for i in p.items]
    assert delivered == [i for i in range(1, 41) if i != 3]
    assert [s["id"] for p in pages for s in p.skipped] == [3]
    sizes = [int(c.request.url.params["per_page"]) for c in mock.calls]
    assert sizes[-1] == 8  # back to full pages
    assert sum(p.request_count for p in pages) == len(mock.calls)


@pytest.mark.parametrize("offset", [0, 150, 185, 190, 199, 250])
def test_a_key_straddling_the_excerpt_cut_never_leaks_a_prefix(mock, client, offset):
    body = "x" * offset + f" {contract.KEY_HEADER}: {KEY} trailing"
    mock.get(API + "ping").respond(418, text=body)
    with pytest.raises(BadRequest) as excinfo:
        client.ping()
    for text in (excinfo.value.message, repr(excinfo.value)):
        assert KEY[:12] not in text


def test_key_echoed_in_an_error_message_or_version_is_scrubbed(mock, client):
    mock.get(API + "ping").respond(
        400, json={"code": "rest_invalid_param", "message": "x" * 290 + KEY, "data": {}}
    )
    with pytest.raises(BadRequest) as excinfo:
        client.ping()
    assert KEY[:12] not in excinfo.value.message
    mock.get(API + "ping").respond(200, json={**PING, "contract_version": KEY})
    with pytest.raises(UnsupportedContractVersion) as excinfo:
        client.ping()
    assert KEY[:12] not in excinfo.value.message


def test_key_in_a_redirect_target_is_scrubbed(mock, client):
    mock.get(API + "ping").respond(302, headers={"Location": f"http://169.254.169.254/?k={KEY}"})
    with pytest.raises(BlockedAddress) as excinfo:
        client.ping()
    assert KEY not in excinfo.value.message
    assert KEY not in (excinfo.value.url or "")


def test_deeply_nested_json_is_invalid_response(mock, client):
    mock.get(API + "ping").respond(200, content=b"[" * 100_000)
    with pytest.raises(InvalidResponse, match="nested too deeply"):
        client.ping()


def test_redirect_to_an_unparseable_location_is_invalid_response(mock, client):
    mock.get(API + "ping").respond(302, headers={"Location": "::::"})
    with pytest.raises(InvalidResponse, match="invalid URL"):
        client.ping()

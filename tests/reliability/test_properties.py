"""Property-based tests: thousands of generated malformed records and responses.

- the mapping never raises, and what it accepts is storable and sanitised;
- the engine, on the real database, turns every bad record into exactly one FAILED log row
  and every record into exactly one row;
- the WordPress client, fed generated status codes, headers and bodies, either returns
  well-formed data or raises a typed WordPressError whose message never contains the key.
"""

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.wordpress.client import WordPressClient
from connectors.wordpress.errors import WordPressError
from connectors.wordpress.pages import Page
from records.mapping import content_hash, map_record, mapping_for
from tests.conftest import make_connector

from .hostile import XSS_VECTORS, dangerous_markup
from .records import HTML_FIELDS, TEMPLATES, record

ENTITY_TYPES = list(TEMPLATES)
KEY = "prop-secret-key-6c1f0e2a9b7d4e3f8a5b6c7d8e9f0a1b"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(XSS_VECTORS)
    | st.sampled_from(
        [
            "",
            "0000-00-00T00:00:00",
            "2024-02-30T10:00:00",
            "2024-11-30 08:00:00",
            "2024-11-30T08:00:00+02:00",
            "2024-11-30T08:00:00.123",
            "javascript:alert(1)",
            "http://",
            "not-an-email",
            "ZZZ",
            "a" * 5000,
            "\x00",
            "\ud800",  # lone UTF-16 surrogates: valid JSON, not Unicode text
            "half \ud83d emoji",
            "9" * 40,
        ]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def malformed_records(draw, entity_type, record_id):
    """A valid record with some keys deleted or replaced by arbitrary JSON, sometimes not an
    object at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(json_values)
    data = record(entity_type, record_id)
    keys = sorted(data)
    for key in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
        if draw(st.booleans()):
            del data[key]
        else:
            data[key] = draw(json_values)
    for key, value in draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)).items():
        data.setdefault(key, value)
    return data


# Thousands of generated inputs in all (issue 9): 7 x 400 records for the mapping, 60 pages of
# up to 12 through the engine, 1,000 response scripts for the client; ~40 s on 2 cores.
@pytest.mark.parametrize("entity_type", ENTITY_TYPES)
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mapping_never_raises_and_sanitises(entity_type, data):
    raw = data.draw(malformed_records(entity_type, data.draw(st.integers(1, 10**6))))
    mapped = map_record(entity_type, raw)
    assert mapped.ok == (not mapped.errors)
    assert all(isinstance(e, str) and e.strip() for e in mapped.errors), mapped.errors
    if mapped.ok:
        assert mapped.external_id.isdigit() and int(mapped.external_id) > 0
        content_hash(mapped.values)  # storable: hashable without error
        for spec in mapping_for(entity_type):
            value = mapped.values.get(spec.name)
            if spec.type == "html" and isinstance(value, str):
                assert not dangerous_markup(value), (spec.name, value)
            if spec.max_length and isinstance(value, str):
                assert len(value) <= spec.max_length, (spec.name, len(value))


@pytest.mark.parametrize("entity_type", sorted(HTML_FIELDS))
@pytest.mark.parametrize("vector", XSS_VECTORS)
def test_every_xss_vector_is_sanitised_on_import(entity_type, vector):
    raw = record(
        entity_type, 7, **{name: f"<p>ok</p>{vector}" for name in HTML_FIELDS[entity_type]}
    )
    mapped = map_record(entity_type, raw)
    assert mapped.ok, mapped.errors
    for name in HTML_FIELDS[entity_type]:
        stored = mapped.values[_platform_field(entity_type, name)]
        assert not dangerous_markup(stored), (name, stored)


def _platform_field(entity_type: str, source: str) -> str:
    for spec in mapping_for(entity_type):
        if spec.source == source:
            return spec.name
    raise AssertionError(f"{entity_type}.{source} is not mapped")


# --- The engine on the real database -------------------------------------------------------


class ListSource:
    """Pages of already-generated records (the client is property-tested on its own below)."""

    def __init__(self, items, page_size=5):
        self.pages = [items[i : i + page_size] for i in range(0, len(items), page_size)] or [[]]
        self.total = len(items)

    def iter_pages(self, entity_type, **options):  # modified_after, per_page, deleted_since
        for number, items in enumerate(self.pages, 1):
            yield Page(items, number, 5, self.total, len(self.pages), request_count=1)

    def iter_deletions(self, since):
        yield Page([], 1, 5, 0, 0, request_count=1)

    def push_record(self, *args, **kwargs):
        raise AssertionError("import-only connector must not push")


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_bad_record_becomes_exactly_one_failed_log_row(org_a, data):
    from syncjobs.engine.core import SyncEngine
    from syncjobs.engine.store import DjangoStore
    from syncjobs.models import SyncJob, SyncLogEntry
    from syncjobs.runner import build_plan

    entity_type = data.draw(st.sampled_from(ENTITY_TYPES))
    count = data.draw(st.integers(1, 12))
    base = data.draw(st.integers(1, 10**6))
    items = [data.draw(malformed_records(entity_type, base + n)) for n in range(count)]
    connector = make_connector(
        org_a, name=f"prop {SyncJob.objects.count()}", entity_types=[entity_type]
    )
    job = SyncJob.objects.create(connector=connector, kind="FULL", status="RUNNING")
    plan = build_plan(job, connector)
    SyncEngine(ListSource(items), DjangoStore(job, connector), plan).run()

    rows = list(SyncLogEntry.objects.filter(job=job).values("external_id", "status", "error"))
    # What each item is, judged by the mapping itself (later duplicates win, as in the engine).
    verdicts = {}
    idless = 0
    for item in items:
        mapped = map_record(entity_type, item, plan.specs[entity_type])
        if mapped.external_id:
            verdicts[mapped.external_id] = mapped.ok
        else:
            idless += 1
    assert len(rows) == len(verdicts) + idless, (rows, items)
    by_id = {}
    for row in rows:
        assert row["external_id"] not in by_id or not row["external_id"], row
        by_id[row["external_id"]] = row
        if row["status"] == "FAILED":
            assert row["error"].strip(), row
    assert sum(1 for r in rows if r["external_id"] == "") == idless
    for external_id, ok in verdicts.items():
        row = by_id[external_id]
        if not ok:
            assert row["status"] == "FAILED", row
        else:
            assert row["status"] == "SUCCESS" or "slug" in row["error"].lower(), row
    failed_rows = sum(1 for r in rows if r["status"] == "FAILED")
    job.refresh_from_db()
    assert job.totals().get("failed", 0) == failed_rows, (job.stats, failed_rows)
    SyncJob.objects.filter(pk=job.pk).update(status="COMPLETED")


# --- The client against generated responses ---------------------------------------------------

STATUSES = [200, 200, 200, 201, 204, 301, 302, 400, 401, 403, 404, 409, 418, 429, 500, 502, 503]


@st.composite
def bodies(draw):
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return b""
    if kind == 1:
        return draw(st.binary(max_size=300))
    if kind == 2:
        return b"<!doctype html><html><body>Maintenance " + KEY.encode() + b"</body></html>"
    if kind == 3:  # truncated JSON
        full = json.dumps({"items": [record("article", 3)], "total": 1}).encode()
        return full[: draw(st.integers(0, len(full) - 1))]
    if kind == 4:  # a list page with generated numbers and items
        items = draw(st.lists(malformed_records("article", draw(st.integers(1, 1000))), max_size=3))
        body = {
            "items": items,
            "page": draw(json_values | st.just(1)),
            "per_page": draw(json_values | st.just(100)),
            "total": draw(json_values | st.integers(0, 5)),
            "total_pages": draw(json_values | st.integers(0, 2)),
        }
        return json.dumps(body, default=str).encode()
    if kind == 5:  # a plugin-style error that quotes the key back
        return json.dumps(
            {
                "code": draw(st.text(max_size=20)),
                "message": f"bad key {KEY}",
                "data": draw(json_values),
            }
        ).encode()
    if kind == 6:
        return json.dumps(draw(json_values), default=str).encode()
    if kind == 7:  # a plausible ping
        return json.dumps(
            {"contract_version": draw(json_values | st.just(1)), "entity_types": draw(json_values)},
            default=str,
        ).encode()
    if kind == 8:
        return ("x" * draw(st.integers(0, 400)) + KEY).encode()
    return json.dumps(record("article", draw(st.integers(-5, 10**6)))).encode()


@st.composite
def responses(draw):
    headers = {}
    if draw(st.booleans()):
        headers["Retry-After"] = draw(
            st.sampled_from(["0", "1", "-5", "999999", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", ""])
        )
    if draw(st.booleans()):
        headers["X-WP-Total"] = draw(
            st.sampled_from(["1", "0", "-1", "abc", "99999999999999999999"])
        )
    if draw(st.booleans()):
        headers["Content-Type"] = draw(
            st.sampled_from(["application/json", "text/html", "application/json; charset=latin-1"])
        )
    status = draw(st.sampled_from(STATUSES))
    if status in (301, 302) and draw(st.booleans()):
        headers["Location"] = draw(
            st.sampled_from(
                ["/elsewhere", "http://169.254.169.254/latest/", "https://wp.example.org/x", "::::"]
            )
        )
    return status, headers, draw(bodies())


def check_error(exc: WordPressError):
    assert isinstance(exc.message, str) and exc.message.strip()
    for text in (exc.message, str(exc), repr(exc), str(exc.url or "")):
        assert KEY not in text, text
        assert KEY[:16] not in text, f"a prefix of the key leaked: {text}"


@settings(max_examples=1000, deadline=None)
@given(script=st.lists(responses(), min_size=1, max_size=4), call=st.integers(0, 4))
def test_client_handles_any_response(script, call):
    sleeps = []
    seen = []

    def handler(request):
        seen.append(request)
        status, headers, body = script[min(len(seen) - 1, len(script) - 1)]
        return httpx.Response(status, headers=headers, content=body)

    client = WordPressClient(
        "https://wp.example.org",
        KEY,
        resolver=lambda host, port: ["93.184.216.34"],
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
        max_retries=2,
    )
    try:
        if call == 0:
            result = client.ping()
            assert result.get("contract_version") == 1
        elif call == 1:
            for page in client.iter_pages("article"):
                assert isinstance(page.items, list)
                assert all(isinstance(i, dict) and isinstance(i.get("id"), int) for i in page.items)
                if len(seen) > 12:
                    break
        elif call == 2:
            assert isinstance(client.get_record("event", 5)["id"], int)
        elif call == 3:
            for page in client.iter_deletions(None):
                assert isinstance(page.items, list)
                if len(seen) > 12:
                    break
        else:
            client.push_record("event", 5, {"venue": "Hall B"})
    except WordPressError as exc:
        check_error(exc)
    finally:
        client.close()
    assert len(sleeps) <= 2 * 13
    assert all(0 <= s <= 300 for s in sleeps), sleeps
    # The key only ever went to the site's own host.
    for request in seen:
        if request.url.host != "wp.example.org":
            assert "X-Association-Sync-Key" not in request.headers


def test_client_survives_deeply_nested_json():
    """A body of 100,000 '[' makes json.loads raise RecursionError, which is not a
    WordPressError: the runner would report it as an "Internal error" crash."""
    client = WordPressClient(
        "https://wp.example.org",
        KEY,
        resolver=lambda host, port: ["93.184.216.34"],
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"[" * 100_000)),
        sleep=lambda s: None,
    )
    with pytest.raises(WordPressError) as info:
        client.ping()
    check_error(info.value)


def test_client_never_quotes_a_partial_key():
    """An error page echoing the request headers, with the key across the 200-character excerpt
    boundary: the scrub must happen before the excerpt is cut, or a prefix of the key leaks."""
    for offset in (150, 180, 190, 195):
        body = ("x" * offset + " X-Association-Sync-Key: " + KEY).encode()
        client = WordPressClient(
            "https://wp.example.org",
            KEY,
            resolver=lambda host, port: ["93.184.216.34"],
            transport=httpx.MockTransport(lambda r, body=body: httpx.Response(418, content=body)),
            sleep=lambda s: None,
        )
        with pytest.raises(WordPressError) as info:
            client.ping()
        check_error(info.value)

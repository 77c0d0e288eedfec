"""Unit tests of records.mapping: every field type and every field status."""

from datetime import UTC, date, datetime

import pytest

from records.mapping import (
    MAPPINGS,
    MISSING,
    FieldSpec,
    FieldStatus,
    content_hash,
    content_payload,
    fingerprint,
    map_page,
    map_record,
    mapping_for,
    reverse_map,
    validate_overrides,
)


def article(**fields):
    record = {
        "id": 61,
        "modified_gmt": "2024-11-29T20:00:00",
        "date_gmt": "2024-11-29T20:00:00",
        "status": "publish",
        "slug": "tom-entity",
        "link": "https://association.example.org/2024/11/tom-entity/",
        "title": "Tom &#038; Jerry&#8217;s <b>bold</b> title",
        "excerpt": "<p>Short&hellip;</p>\n",
        "content": '<p onclick="steal()">Hello</p><script>alert(1)</script>'
        '<img src="https://association.example.org/a.png" alt="">',
        "author_id": 1,
        "author_name": "Site Admin",
        "categories": ["News", "Tom &amp; Jerry"],
        "tags": ["sync"],
        "featured_image_url": "https://association.example.org/a.png",
        "password_protected": False,
    }
    record.update(fields)
    return record


def field(mapped, name):
    return next(f for f in mapped.fields if f.name == name)


def one(spec, raw):
    """Map a record made of a single field."""
    return map_record("x", {"id": 1, "modified_gmt": "2024-01-01T00:00:00", **raw}, (spec,))


def test_article_maps_decodes_and_sanitises():
    mapped = map_record("article", article())
    assert mapped.ok, mapped.errors
    assert mapped.external_id == "61"
    assert mapped.modified_gmt == datetime(2024, 11, 29, 20, tzinfo=UTC)
    values = mapped.values
    assert values["title"] == "Tom & Jerry’s bold title"  # entities decoded, markup dropped
    assert "onclick" not in values["content"] and "<script" not in values["content"]
    assert "alert" not in values["content"]
    assert '<img src="https://association.example.org/a.png"' in values["content"]
    assert values["categories"] == ["News", "Tom & Jerry"]
    assert values["published_at"] == datetime(2024, 11, 29, 20, tzinfo=UTC)
    assert field(mapped, "title").status is FieldStatus.PRESENT


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        (FieldSpec("t", "t", "text"), "A &amp; B", "A & B"),
        (FieldSpec("h", "h", "html"), "<p>x</p><iframe src=x></iframe>", "<p>x</p>"),
        (FieldSpec("s", "s", "slug"), "%c3%bcber-uns", "über-uns"),
        (FieldSpec("i", "i", "int"), 250, 250),
        (FieldSpec("b", "b", "bool"), True, True),
        (
            FieldSpec("d", "d", "datetime"),
            "2025-03-14T09:00:00",
            datetime(2025, 3, 14, 9, tzinfo=UTC),
        ),
        (FieldSpec("d", "d", "date"), "2025-06-10", date(2025, 6, 10)),
        (FieldSpec("u", "u", "url"), "https://example.org/x", "https://example.org/x"),
        (FieldSpec("e", "e", "email"), "a@example.net", "a@example.net"),
        (FieldSpec("l", "l", "list"), ["A &amp; B", "C"], ["A & B", "C"]),
        (FieldSpec("c", "c", "choice", choices=("low", "high")), "high", "high"),
        (FieldSpec("c", "c", "country"), "nl", "NL"),
        (
            FieldSpec("a", "a", "address"),
            {"street": "Hauptstraße 5", "city": "Berlin", "postcode": "10115", "country": "DE"},
            "Hauptstraße 5\n10115 Berlin\nDE",
        ),
        (FieldSpec("m", "m", "membership_status"), ["subscriber", "lapsed_member"], "lapsed"),
        (FieldSpec("m", "m", "membership_status"), ["administrator"], "active"),
        # §10: no recognised role is no membership, not "inactive".
        (FieldSpec("m", "m", "membership_status"), ["customer"], ""),
        (FieldSpec("m", "m", "membership_status"), [], ""),
    ],
)
def test_every_type_converts_a_good_value(spec, raw, expected):
    mapped = one(spec, {spec.source: raw})
    assert mapped.ok, mapped.errors
    assert mapped.values[spec.name] == expected
    assert mapped.fields[0].status is FieldStatus.PRESENT


@pytest.mark.parametrize(
    ("spec", "raw", "message"),
    [
        (FieldSpec("t", "t", "text"), 12, "expected a string, got int"),
        (FieldSpec("h", "h", "html"), ["x"], "expected a string, got a list"),
        (FieldSpec("i", "i", "int"), "12", "expected a whole number"),
        (FieldSpec("i", "i", "int"), True, "expected a whole number"),
        (FieldSpec("i", "i", "int"), -1, "must not be negative"),
        (FieldSpec("b", "b", "bool"), "yes", "expected true or false"),
        (FieldSpec("d", "d", "datetime"), "2025-02-30T09:00:00", "invalid date"),
        (FieldSpec("d", "d", "datetime"), "2025-03-14 09:00:00", "invalid date"),
        (FieldSpec("d", "d", "date"), "14/03/2025", "invalid date"),
        (FieldSpec("e", "e", "email"), "not-an-email", "not an email address"),
        (FieldSpec("l", "l", "list"), "News", "expected a list of strings"),
        (FieldSpec("l", "l", "list"), ["ok", 3], "expected a list of strings"),
        (FieldSpec("c", "c", "choice", choices=("low", "high")), "extreme", "not one of low"),
        (FieldSpec("a", "a", "address"), "Berlin", "expected an object"),
        (
            FieldSpec("a", "a", "address"),
            {"city": 5},
            "field 'a': 'city' must be a string, got int",
        ),
        (FieldSpec("m", "m", "membership_status"), "member", "list of role slugs"),
        (FieldSpec("t", "t", "text", max_length=5), "abcdefg", "at most 5"),
        (FieldSpec("d", "d", "date"), "TBA", "field 'd': invalid date 'TBA' (expected YYYY-MM-DD)"),
    ],
)
def test_every_type_reports_a_bad_value_as_invalid(spec, raw, message):
    mapped = one(spec, {spec.source: raw})
    assert not mapped.ok
    assert mapped.fields[0].status is FieldStatus.INVALID
    assert message in mapped.errors[0]
    assert spec.name not in mapped.values


def test_missing_optional_field_stores_the_empty_value_without_error():
    mapped = one(FieldSpec("u", "u", "url"), {"u": None})
    assert mapped.ok
    assert mapped.fields[0].status is FieldStatus.MISSING
    assert mapped.values["u"] == ""
    assert one(FieldSpec("l", "l", "list"), {}).values["l"] == []
    assert one(FieldSpec("d", "d", "datetime"), {}).values["d"] is None


def test_missing_or_null_required_field_is_an_error():
    absent = article()
    del absent["title"]
    mapped = map_record("article", absent)
    assert not mapped.ok
    assert field(mapped, "title").status is FieldStatus.MISSING
    assert mapped.errors == ["required field 'title' is missing"]
    assert map_record("article", article(title=None)).errors == [
        "required field 'title' is missing (null in WordPress)"
    ]
    member = {"id": 3, "modified_gmt": "2024-01-01T00:00:00"}
    assert map_record("member", member).errors == ["required field 'email' is missing"]


def test_empty_title_of_an_untitled_draft_is_valid():
    mapped = map_record("article", article(title="", status="draft", slug=""))
    assert mapped.ok, mapped.errors
    assert mapped.values["title"] == ""


def test_default_used_when_absent_or_null():
    spec = FieldSpec("p", "p", "choice", default="normal", choices=("low", "normal"))
    mapped = one(spec, {})
    assert mapped.ok
    assert mapped.fields[0].status is FieldStatus.DEFAULT_USED
    assert mapped.values["p"] == "normal"
    assert one(spec, {"p": None}).values["p"] == "normal"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/relative/path", "ftp://x.example/f"])
def test_unsafe_or_relative_url_is_dropped_not_fatal(url):
    mapped = one(FieldSpec("u", "u", "url"), {"u": url})
    assert mapped.ok
    assert mapped.fields[0].status is FieldStatus.DEFAULT_USED
    assert mapped.values["u"] == ""
    assert "not an absolute http(s) URL" in mapped.fields[0].error


def test_legacy_country_text_is_tolerated_not_stored():
    mapped = one(FieldSpec("c", "c", "country"), {"c": "Germany"})
    assert mapped.ok
    assert mapped.fields[0].status is FieldStatus.DEFAULT_USED
    assert mapped.values["c"] == ""
    assert "not a two-letter country code" in mapped.fields[0].error


def test_dotted_source_path():
    mapped = one(FieldSpec("city", "address.city", "text"), {"address": {"city": "Köln"}})
    assert mapped.values["city"] == "Köln"
    assert one(FieldSpec("city", "address.city", "text"), {"address": None}).ok


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not a record", "expected a JSON object, got a string"),
        (None, "expected a JSON object, got NoneType"),
        ([1, 2], "expected a JSON object, got a list"),
        ({"modified_gmt": "2024-01-01T00:00:00", "title": "x"}, "the record has no id"),
        (
            {"id": "61", "modified_gmt": "2024-01-01T00:00:00"},
            "field 'id' must be a positive integer, got a string '61'",
        ),
        ({"id": 0, "modified_gmt": "2024-01-01T00:00:00"}, "field 'id' must be a positive"),
        ({"id": 5}, "required field 'modified_gmt' is missing"),
        (
            {"id": 5, "modified_gmt": "yesterday"},
            "field 'modified_gmt': invalid date 'yesterday' (expected YYYY-MM-DDTHH:MM:SS)",
        ),
    ],
)
def test_malformed_records_never_raise(raw, message):
    mapped = map_record("article", raw)
    assert not mapped.ok
    assert any(message in error for error in mapped.errors), mapped.errors


def test_event_end_before_start_is_an_invalid_date():
    mapped = map_record(
        "event",
        {
            "id": 812,
            "modified_gmt": "2024-11-28T09:15:00",
            "title": "AGM",
            "start_gmt": "2025-03-14T09:00:00",
            "end_gmt": "2025-03-13T16:30:00",
            "address": {},
        },
    )
    assert (
        "end_gmt 2025-03-13T16:30:00 is before start_gmt 2025-03-14T09:00:00" in (mapped.errors[0])
    )


def test_conference_with_invalid_start_date_fails():
    mapped = map_record(
        "conference",
        {
            "id": 9,
            "modified_gmt": "2024-09-05T07:30:00",
            "title": "Summit",
            "start_date": "2025-13-40",
        },
    )
    assert mapped.errors == ["field 'start_date': invalid date '2025-13-40' (expected YYYY-MM-DD)"]


def test_member_roles_become_membership_status():
    mapped = map_record(
        "member",
        {
            "id": 28,
            "modified_gmt": "2024-10-02T14:21:09",
            "email": "alice@example.net",
            "display_name": "Alice",
            "company": "Müller &amp; Söhne GmbH",
            "address": {"street": None, "city": "Berlin", "postcode": None, "country": "DE"},
            "certifications": [],
            "roles": ["subscriber", "member"],
            "registered_gmt": "2023-12-30T01:03:14",
        },
    )
    assert mapped.ok, mapped.errors
    assert mapped.values["membership_status"] == "active"
    assert mapped.values["company"] == "Müller & Söhne GmbH"
    assert mapped.values["address"] == "Berlin\nDE"


def test_every_entity_type_has_a_mapping_naming_model_fields():
    from records.models import RECORD_MODELS

    for entity_type, specs in MAPPINGS.items():
        model_fields = {f.name for f in RECORD_MODELS[entity_type]._meta.get_fields()}
        assert {s.name for s in specs} <= model_fields, entity_type


def test_overrides_change_the_source_path_and_are_validated():
    specs = mapping_for("member", {"company": "address.city"})
    assert next(s for s in specs if s.name == "company").source == "address.city"
    assert mapping_for("member") is MAPPINGS["member"]
    assert validate_overrides("member", {"nope": "x"})[0].startswith("member: 'nope'")
    with pytest.raises(ValueError, match="is not a dotted path"):
        mapping_for("member", {"company": "Address City"})
    with pytest.raises(ValueError, match="unknown entity type"):
        mapping_for("planet")


def test_content_hash_is_stable_and_sensitive():
    a = map_record("article", article()).values
    b = dict(reversed(list(map_record("article", article()).values.items())))
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash({**a, "title": "Other"})
    assert len(content_hash(a)) == 64


def test_same_content_different_entities_hashes_equal_after_decoding():
    # What is hashed is what is stored: "&amp;" and "&" store the same title.
    one_ = map_record("article", article(title="A &amp; B")).values
    two = map_record("article", article(title="A & B")).values
    assert content_hash(one_) == content_hash(two)


def test_reverse_map_sends_writable_fields_only():
    values = map_record(
        "event",
        {
            "id": 812,
            "modified_gmt": "2024-11-28T09:15:00",
            "title": "AGM",
            "slug": "agm",
            "status": "publish",
            "description": "<p>x</p>",
            "start_gmt": "2025-03-14T09:00:00",
            "venue": "Hall A",
            "address": {"city": "Berlin"},
            "capacity": 250,
        },
    ).values
    body = reverse_map("event", values)
    assert body["title"] == "AGM" and body["venue"] == "Hall A" and body["capacity"] == 250
    assert body["start_gmt"] == "2025-03-14T09:00:00"
    assert body["end_gmt"] is None and body["registration_url"] is None
    assert "slug" not in body and "address" not in body  # read-only / not reversible
    assert reverse_map("article", {"status": "future", "title": "x"}) == {"title": "x"}


POST_RECORDS = {
    "article": {"title": "T", "content": "<p>Secret plans</p>", "excerpt": "<p>Secret</p>"},
    "event": {
        "title": "T",
        "description": "<p>Secret plans</p>",
        "start_gmt": "2025-03-14T09:00:00",
    },
    "document": {"title": "T", "kind": "policy", "access_level": "public"},
    "conference": {"title": "T", "description": "<p>Secret plans</p>", "start_date": "2025-06-10"},
    "company": {"name": "T", "description": "<p>Secret plans</p>"},
    "notification": {"title": "T", "body": "<p>Secret plans</p>", "audience": "all"},
}


@pytest.mark.parametrize("entity_type", sorted(POST_RECORDS))
@pytest.mark.parametrize("status", ["publish", "future", "draft", "pending", "private"])
def test_every_post_type_stores_its_status_and_protection(entity_type, status):
    raw = {"id": 9, "modified_gmt": "2024-11-29T20:00:00", "status": status}
    mapped = map_record(entity_type, {**raw, **POST_RECORDS[entity_type]})
    assert mapped.ok, mapped.errors
    assert mapped.values["status"] == status
    assert mapped.values["password_protected"] is False  # absent (a 1.1 plugin): not protected
    bad = map_record(entity_type, {**raw, **POST_RECORDS[entity_type], "status": "trash"})
    assert "'trash' is not one of publish, future, draft, pending, private" in bad.errors[0]


@pytest.mark.parametrize("entity_type", sorted(POST_RECORDS))
def test_protected_body_is_not_stored_unless_the_connector_says_so(entity_type):
    raw = {"id": 9, "modified_gmt": "2024-11-29T20:00:00", "status": "publish"}
    raw.update(POST_RECORDS[entity_type], password_protected=True)

    withheld = map_record(entity_type, raw, mapping_for(entity_type))
    stored = map_record(entity_type, raw, mapping_for(entity_type, protected_content=True))
    public = map_record(entity_type, {**raw, "password_protected": False})

    assert withheld.ok and stored.ok and public.ok
    assert withheld.values["password_protected"] is True
    assert "Secret" not in repr(withheld.values)
    bodies = {s.name for s in MAPPINGS[entity_type] if s.withheld_when_protected}
    assert all(withheld.values[name] == "" for name in bodies)
    assert bodies == set() or "Secret plans" in repr(stored.values)
    assert public.values == {**stored.values, "password_protected": False}
    # The hash is of what is stored: switching the setting rewrites the record.
    assert bodies == set() or content_hash(withheld.values) != content_hash(stored.values)
    # "" is not the WordPress body: a push of the withheld record never erases it.
    body = reverse_map(entity_type, withheld.values, mapping_for(entity_type))
    assert not bodies & set(body)
    assert "password_protected" not in body


def test_missing_sentinel_is_falsy_and_singleton():
    assert not MISSING
    assert repr(MISSING) == "MISSING"


# --- The engine's path: the same mapping, without per-field detail --------------------------


def _broken_records():
    """Records that take every branch of _map_value: wrong types, nulls, tolerated values,
    too long, dotted sources, dates out of order."""
    return [
        ("article", article()),
        ("article", article(title=None, slug=7, categories=["a", 3], status="weird")),
        ("article", article(featured_image_url="javascript:alert(1)", content=["x"])),
        ("article", article(title="x" * 501, modified_gmt="2024-02-30T00:00:00")),
        ("article", "not an object"),
        ("article", article(id=True)),
        ("member", {"id": 4, "modified_gmt": "2024-01-01T00:00:00", "email": "a@b.example"}),
        ("member", {"id": 5, "modified_gmt": "2024-01-01T00:00:00", "email": None}),
        (
            "member",
            {
                "id": 6,
                "modified_gmt": "2024-01-01T00:00:00",
                "email": "x@y.z",
                "address": {"city": 3},
                "roles": "admin",
            },
        ),
        (
            "event",
            {
                "id": 7,
                "modified_gmt": "2024-01-01T00:00:00",
                "title": "E",
                "start_gmt": "2024-05-02T10:00:00",
                "end_gmt": "2024-05-01T10:00:00",
                "capacity": -1,
            },
        ),
        (
            "conference",
            {
                "id": 8,
                "modified_gmt": "2024-01-01T00:00:00",
                "title": "C",
                "start_date": "2024-05-02",
                "end_date": "2024-05-01",
                "country": "Germany",
            },
        ),
        (
            "document",
            {
                "id": 9,
                "modified_gmt": "2024-01-01T00:00:00",
                "title": "D",
                "kind": None,
                "size": 1.5,
                "access_level": "secret",
            },
        ),
        (
            "notification",
            {
                "id": 10,
                "modified_gmt": "2024-01-01T00:00:00",
                "title": "N",
                "send_at_gmt": "soon",
                "priority": None,
            },
        ),
    ]


def _fields(mapped):
    return [(f.name, f.source, f.status, f.raw, f.value, f.error) for f in mapped.fields]


def test_engine_mapping_without_detail_stores_and_hashes_the_same():
    from wpsim import SimulatedSite

    site = SimulatedSite(records=300, seed=3, key="k" * 40)
    cases = [(t, site.record(t, i)) for t in site.entity_types for i in site.ids(t)]
    for entity_type, raw in cases + _broken_records():
        full = map_record(entity_type, raw)
        quick = map_record(entity_type, raw, detail=False)
        assert quick.fields == []
        assert (quick.external_id, quick.modified_gmt, quick.values, quick.errors) == (
            full.external_id,
            full.modified_gmt,
            full.values,
            full.errors,
        )
        if full.ok:
            assert content_hash(quick.values) == content_hash(full.values)
        # The engine's page mapping: a clean record's quick way, or map_record for any problem.
        (paged,) = map_page(entity_type, MAPPINGS[entity_type], [raw])
        assert (paged.external_id, paged.modified_gmt, paged.values, paged.errors) == (
            full.external_id,
            full.modified_gmt,
            full.values,
            full.errors,
        )
        assert (paged.digest, paged.payload) == (
            (content_hash(full.values), content_payload(full.values)) if full.ok else ("", "")
        )


def test_detailed_mapping_reports_every_field_as_before():
    # One FieldResult per spec, in spec order, with the outcome the converters decided.
    mapped = map_record("event", dict(_broken_records()[9][1]))
    assert [f.name for f in mapped.fields] == [spec.name for spec in MAPPINGS["event"]]
    capacity = field(mapped, "capacity")
    assert (capacity.status, capacity.raw, capacity.value) == (FieldStatus.INVALID, -1, None)
    assert capacity.error == "field 'capacity': must not be negative, got -1"
    assert "invalid dates: end_gmt 2024-05-01T10:00:00 is before start_gmt" in "".join(
        mapped.errors
    )


def test_every_field_type_has_a_converter():
    from records.mapping import _CONVERTERS, FIELD_TYPES

    assert set(_CONVERTERS) == set(FIELD_TYPES)


def test_reused_cleaners_sanitise_exactly_like_nh3_clean():
    import nh3

    from records.mapping.conversions import _HTML_CLEANER, _TEXT_CLEANER
    from tests.reliability.hostile import XSS_VECTORS

    samples = [*XSS_VECTORS, article()["content"], "<p>Tom &amp; <b>Jerry</b></p>", "a\x00b"]
    for html in samples:
        assert _HTML_CLEANER.clean(html) == nh3.clean(html)
        assert _TEXT_CLEANER.clean(html) == nh3.clean(html, tags=set())


def test_payload_is_the_hashed_json_of_the_values():
    import hashlib
    import json

    from records.mapping import content_payload, fingerprint

    mapped = fingerprint(map_record("article", article(title='Quote " back\\slash\nline ✓ 😀')))
    assert mapped.payload == content_payload(mapped.values)
    assert mapped.digest == hashlib.sha256(mapped.payload.encode()).hexdigest()
    assert mapped.digest == content_hash(mapped.values)
    decoded = json.loads(mapped.payload)
    assert list(decoded) == sorted(mapped.values)
    assert decoded["title"] == mapped.values["title"]
    assert decoded["published_at"] == mapped.values["published_at"].isoformat()
    # A record that failed mapping is never written: it gets neither.
    failed = fingerprint(map_record("article", article(title=None)))
    assert (failed.payload, failed.digest) == ("", "")


def test_payload_is_the_standard_librarys_canonical_json_byte_for_byte():
    # content_payload is written by orjson; the hashes already stored were the standard
    # library's. Any value a mapping can produce must give the same text, or every record
    # would look changed on the first sync after an upgrade.
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from records.mapping import _stdlib_payload, content_payload

    utc_datetimes = st.datetimes(timezones=st.just(UTC))
    values = st.dictionaries(
        st.sampled_from([spec.name for specs in MAPPINGS.values() for spec in specs]),
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.text()
        | st.lists(st.text(), max_size=4)
        | utc_datetimes
        | st.dates(),
    )

    @settings(max_examples=300, deadline=None)
    @given(values)
    def same(mapped_values):
        assert content_payload(mapped_values) == _stdlib_payload(mapped_values)

    same()
    # What orjson refuses falls back to the standard library, not to an error.
    assert content_payload({"size": 2**70}) == '{"size":1180591620717411303424}'


@pytest.mark.parametrize(
    ("entity_type", "raw", "message"),
    [
        ("article", {"title": "a\ud800"}, "field 'title': character 2 is \\ud800"),
        ("article", {"content": "<p>\udc00</p>"}, "field 'content': character 4 is \\udc00"),
        ("article", {"categories": ["ok", "\udfff"]}, "field 'categories': character 1 is"),
        ("member", {"email": "a\ud800@example.org"}, "field 'email': character 2 is \\ud800"),
        ("member", {"address": {"city": "\ud83d"}}, "field 'address': character 1 is \\ud83d"),
        ("event", {"registration_url": "https://x.org/\ud800"}, "field 'registration_url'"),
    ],
)
def test_a_lone_surrogate_is_an_invalid_field_not_a_crash(entity_type, raw, message):
    # Valid JSON ("\ud800"), not valid Unicode: the record fails by field, the diagnostics can
    # render it, and nothing downstream (nh3, the hash, PostgreSQL) sees it.
    record = {"id": 7, "modified_gmt": "2024-01-01T00:00:00", "title": "t", **raw}
    for detail in (True, False):
        mapped = fingerprint(map_record(entity_type, record, detail=detail))
        assert not mapped.ok
        assert any(message in error for error in mapped.errors), mapped.errors
        assert all(error.isascii() for error in mapped.errors)


def test_slug_unescaping_and_url_check_take_the_standard_librarys_answers():
    # conversions' shortcuts for slugs (_unquote) and URLs (_PLAIN_URL_RE) must decide
    # exactly as urllib does, or stored slugs and hashes would change.
    from urllib.parse import unquote, urlsplit

    from records.mapping import conversions
    from records.mapping.fields import FieldSpec

    for text in [
        "plain",
        "%c5%82%c3%b3d%c5%ba",
        "%C5%82%C3%B3D%C5%BA-%e2%9c%93",
        "%E2%9Cx%93 broken %ZZ %4 %",
        "%41%42c%",
        "%ff%fe%00%7f",
        "łódź-%c5%82",
        "%%%25%2525",
    ]:
        assert conversions._unquote(text) == unquote(text), text
    spec = FieldSpec("website", "website", "url")
    for url in [
        "https://example.org",
        "http://example.org/a path",
        "https://ex.org/p?q=1#frag",
        "HTTPS://EXAMPLE.ORG/",
        "https:///nohost",
        "javascript:alert(1)",
        "//example.org/relative",
        "https://[::1]:8080/x",
        "https://[::1/x",
        "http://user:pw@host:80/ok?x=%20",
        "https://exämple.org/ü",
        "https://ex.org/\tx",
    ]:
        try:
            accepted = conversions._to_url(spec, url)
        except conversions._Tolerated:
            accepted = None
        except ValueError:
            accepted = "ValueError"
        try:
            parts = urlsplit(url.strip())
            valid = parts.scheme in ("http", "https") and parts.netloc and " " not in url
            expected = url.strip() if valid else None
        except ValueError:
            expected = "ValueError"
        assert accepted == expected, url

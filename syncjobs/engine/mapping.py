"""The one definition of how a WordPress record becomes platform field values.

Plain Python (no Django): the sync engine, the diagnostics and the tests all import it.

`MAPPINGS` holds, per entity type, one `FieldSpec` per platform field (the records model's
field name), with the dotted path of its source in the plugin's JSON (docs/wordpress-sync-api.md
§9) and a type that says how to validate and convert it. `map_record()` never raises: a record
that is not an object, has no id, or carries a value of the wrong type comes back as a
`MappedRecord` whose `errors` say precisely what is wrong, so the engine can log it as FAILED
and carry on with the next record.

Values are stored exactly as mapped: HTML fields are sanitised with nh3 and entities in plain
text fields are decoded *here*, so `content_hash()` is the hash of what the platform stores and
a re-sync of an unchanged record is a SKIP.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlsplit

import nh3
import orjson

from connectors.wordpress import contract

__all__ = [
    "MAPPINGS",
    "MISSING",
    "FieldResult",
    "FieldSpec",
    "FieldStatus",
    "MappedRecord",
    "content_hash",
    "content_payload",
    "fingerprint",
    "map_record",
    "mapping_for",
    "reverse_map",
    "validate_overrides",
]


class _Missing:
    """Sentinel for "no default" (None is a legitimate default)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

FIELD_TYPES = (
    "text",
    "html",
    "slug",
    "int",
    "datetime",
    "date",
    "url",
    "email",
    "list",
    "choice",
    "bool",
    "address",
    "country",
    "membership_status",
)


@dataclass(frozen=True)
class FieldSpec:
    name: str  # platform field name (records model field)
    source: str  # dotted path into the WordPress record, e.g. "address.city", "roles"
    type: str  # one of FIELD_TYPES
    required: bool = False
    default: Any = MISSING  # MISSING = no default
    choices: tuple = ()  # for "choice"
    max_length: int | None = None
    # The post's body (content, excerpt, description): of a password-protected post it is
    # stored as "" unless the connector stores protected content (mapping_for), and never
    # pushed back from such a record (its "" is not the WordPress content).
    withheld_when_protected: bool = False

    def __post_init__(self):
        if self.type not in FIELD_TYPES:
            raise ValueError(f"unknown field type {self.type!r} for {self.name}")


class FieldStatus(StrEnum):
    PRESENT = "PRESENT"  # the source had a valid value
    MISSING = "MISSING"  # absent or null, no default (an error only when required)
    DEFAULT_USED = "DEFAULT_USED"  # absent, null or unusable-but-tolerated: the default is stored
    INVALID = "INVALID"  # present but unusable: the record fails


@dataclass(slots=True)
class FieldResult:
    name: str
    source: str
    status: FieldStatus
    raw: Any
    value: Any
    error: str = ""


@dataclass
class MappedRecord:
    entity_type: str
    external_id: str
    modified_gmt: datetime | None
    values: dict
    fields: list[FieldResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # content_hash(values), when the caller computed it ahead (the engine's prefetch thread,
    # through fingerprint()), and the canonical JSON it is the hash of (content_payload).
    digest: str = ""
    payload: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def hash(self) -> str:
        return content_hash(self.values)


# --- The mapping -----------------------------------------------------------------------------

#: Bumped when a change to MAPPINGS changes what is stored for records WordPress did not
#: change (a new field, a new conversion): their next full walk rewrites them, and a
#: reconciliation that does so does not report those rewrites as drift (syncjobs.runner).
#: 2: every post type's status and password protection; no membership without a role.
MAPPING_REVISION = 2

_POST_STATUSES = contract.SERVED_POST_STATUSES


def _common(title_source: str = "title") -> tuple[FieldSpec, ...]:
    return (
        FieldSpec(
            "title" if title_source == "title" else "name",
            title_source,
            "text",
            True,
            max_length=500 if title_source == "title" else 300,
        ),
        FieldSpec("slug", "slug", "slug", max_length=200),
    )


def _visibility() -> tuple[FieldSpec, ...]:
    """Every post type's publish status and password protection (§9.0): a draft, scheduled,
    pending, private or protected record is stored as such, never as published. A plugin
    older than contract 1.2 sends no `password_protected` outside articles: not protected."""
    return (
        FieldSpec("status", "status", "choice", choices=_POST_STATUSES),
        FieldSpec("password_protected", "password_protected", "bool", default=False),
    )


def _body(name: str, source: str | None = None) -> FieldSpec:
    return FieldSpec(name, source or name, "html", withheld_when_protected=True)


MAPPINGS: dict[str, tuple[FieldSpec, ...]] = {
    "article": (
        *_common(),
        _body("excerpt"),
        _body("content"),
        FieldSpec("author_name", "author_name", "text", max_length=200),
        FieldSpec("categories", "categories", "list"),
        FieldSpec("tags", "tags", "list"),
        FieldSpec("featured_image_url", "featured_image_url", "url", max_length=1000),
        FieldSpec("published_at", "date_gmt", "datetime"),
        *_visibility(),
    ),
    "member": (
        FieldSpec("email", "email", "email", required=True, max_length=254),
        FieldSpec("first_name", "first_name", "text", max_length=150),
        FieldSpec("last_name", "last_name", "text", max_length=150),
        FieldSpec("display_name", "display_name", "text", max_length=250),
        FieldSpec("phone", "phone", "text", max_length=50),
        FieldSpec("job_title", "job_title", "text", max_length=200),
        FieldSpec("company", "company", "text", max_length=200),
        FieldSpec("address", "address", "address"),
        FieldSpec("certifications", "certifications", "list"),
        FieldSpec("membership_status", "roles", "membership_status"),
        FieldSpec("joined_at", "registered_gmt", "datetime"),
    ),
    "event": (
        *_common(),
        _body("description"),
        FieldSpec("starts_at", "start_gmt", "datetime", required=True),
        FieldSpec("ends_at", "end_gmt", "datetime"),
        FieldSpec("timezone", "timezone", "text", max_length=64),
        FieldSpec("venue", "venue", "text", max_length=300),
        FieldSpec("address", "address", "address"),
        FieldSpec("capacity", "capacity", "int"),
        FieldSpec("registration_url", "registration_url", "url", max_length=1000),
        *_visibility(),
    ),
    "document": (
        *_common(),
        FieldSpec("kind", "kind", "choice", default="document", choices=contract.DOCUMENT_KINDS),
        FieldSpec("folder_path", "folder_path", "text", max_length=500),
        FieldSpec("file_url", "file_url", "url", max_length=1000),
        FieldSpec("mime_type", "mime_type", "text", max_length=100),
        FieldSpec("size", "size", "int"),
        FieldSpec(
            "access_level",
            "access_level",
            "choice",
            default="members",
            choices=contract.ACCESS_LEVELS,
        ),
        *_visibility(),
    ),
    "conference": (
        *_common(),
        FieldSpec("start_date", "start_date", "date", required=True),
        FieldSpec("end_date", "end_date", "date"),
        FieldSpec("venue", "venue", "text", max_length=300),
        FieldSpec("city", "city", "text", max_length=200),
        FieldSpec("country", "country", "country"),
        FieldSpec("website", "website", "url", max_length=1000),
        _body("description"),
        *_visibility(),
    ),
    "company": (
        *_common("name"),
        FieldSpec("website", "website", "url", max_length=1000),
        FieldSpec("industry", "industry", "text", max_length=200),
        _body("description"),
        FieldSpec("logo_url", "logo_url", "url", max_length=1000),
        *_visibility(),
    ),
    "notification": (
        FieldSpec("title", "title", "text", required=True, max_length=500),
        _body("body"),
        FieldSpec(
            "audience",
            "audience",
            "choice",
            default="members",
            choices=contract.NOTIFICATION_AUDIENCES,
        ),
        FieldSpec("send_at", "send_at_gmt", "datetime"),
        FieldSpec(
            "priority",
            "priority",
            "choice",
            default="normal",
            choices=contract.NOTIFICATION_PRIORITIES,
        ),
        *_visibility(),
    ),
}

# Pairs (start, end) checked after the fields: an end before its start is an invalid date.
_DATE_RANGES = {"event": ("starts_at", "ends_at"), "conference": ("start_date", "end_date")}

# What an absent optional value is stored as (the model fields are NOT NULL strings / lists).
_EMPTY = {
    "text": "",
    "html": "",
    "slug": "",
    "url": "",
    "email": "",
    "address": "",
    "country": "",
    "list": [],
    "choice": "",
    "int": None,
    "datetime": None,
    "date": None,
    "bool": None,
    "membership_status": "",
}

_SOURCE_PATH_RE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")


def validate_overrides(entity_type: str, overrides: dict | None) -> list[str]:
    """Problems with a connector's overrides for one entity type (empty list = fine)."""
    problems = []
    if entity_type not in MAPPINGS:
        return [f"unknown entity type {entity_type!r}"]
    if not overrides:
        return problems
    if not isinstance(overrides, dict):
        return [f"field mapping overrides for {entity_type} must be an object"]
    names = {spec.name for spec in MAPPINGS[entity_type]}
    for platform_field, source in overrides.items():
        if platform_field not in names:
            problems.append(
                f"{entity_type}: {platform_field!r} is not a platform field "
                f"(fields: {', '.join(sorted(names))})"
            )
        elif not isinstance(source, str) or not _SOURCE_PATH_RE.match(source):
            problems.append(
                f"{entity_type}.{platform_field}: source {source!r} is not a dotted path "
                "of snake_case keys (e.g. address.city)"
            )
    return problems


def mapping_for(
    entity_type: str, overrides: dict | None = None, *, protected_content: bool = False
) -> tuple[FieldSpec, ...]:
    """The field specs of an entity type with the connector's source-path overrides applied;
    `protected_content` (the connector's setting) stores password-protected bodies too.

    Raises ValueError (with every problem listed) for an unknown type or bad overrides.
    """
    problems = validate_overrides(entity_type, overrides)
    if problems:
        raise ValueError("; ".join(problems))
    specs = MAPPINGS[entity_type]
    if protected_content:
        specs = tuple(replace(spec, withheld_when_protected=False) for spec in specs)
    if not overrides:
        return specs
    return tuple(
        replace(spec, source=overrides[spec.name]) if spec.name in overrides else spec
        for spec in specs
    )


# --- Conversion ------------------------------------------------------------------------------


# Every record's modified_gmt and date fields: the contract's parser has the fast path.
parse_gmt = contract.parse_gmt


_ABSENT = object()


class _Invalid(Exception):
    pass


class _Tolerated(Exception):
    """A legacy value the contract says to tolerate: the default/empty value is stored."""


def _lookup(raw: dict, path: str) -> tuple[bool, Any]:
    if "." not in path:  # nearly every field: one dict lookup (runs ~10x per record)
        value = raw.get(path, _ABSENT)
        return (False, None) if value is _ABSENT else (True, value)
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


# Built once, used for every field: nh3.clean() builds ammonia's whole configuration (its tag
# and attribute sets) on each call, which cost as much as cleaning a typical field. Same
# defaults, so the same output (tests/engine/test_mapping.py compares them).
_HTML_CLEANER = nh3.Cleaner()
_TEXT_CLEANER = nh3.Cleaner(tags=set())


# JSON can carry a lone UTF-16 surrogate ("\ud800"), which is not Unicode text: nh3, the
# content hash and PostgreSQL all refuse it, and it used to fail the whole job. It fails its
# record here, naming the field. isascii() first: most values never reach the search.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _valid_text(value: str) -> str:
    if not value.isascii():
        found = _SURROGATE_RE.search(value)
        if found:
            raise _Invalid(
                f"character {found.start() + 1} is {ascii(found.group())[1:-1]}, a lone UTF-16 "
                "surrogate: not valid Unicode text"
            )
    return value


def _plain_text(value: str) -> str:
    # Titles may carry markup an editor typed ("<b>bold</b>"): drop the tags, keep the text,
    # then decode entities (&#8217; &amp; …) once. nh3 re-escapes & < >, unescape undoes it.
    _valid_text(value)
    if "<" in value:
        value = _TEXT_CLEANER.clean(value)
    return html.unescape(value) if "&" in value else value


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _expect_str(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_type_name(value)}")
    return _valid_text(value)


_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")


# One converter per field type: (spec, value) -> the value to store, or raises _Invalid (the
# record fails) / _Tolerated (the default is stored). A table, not an if-chain: it runs for
# every field of every record.


def _to_text(spec: FieldSpec, value: Any) -> str:
    if isinstance(value, str):  # the common case, without a call
        return _plain_text(value)
    return _plain_text(_expect_str(value))


def _to_html(spec: FieldSpec, value: Any) -> str:
    return _HTML_CLEANER.clean(_expect_str(value))


def _to_slug(spec: FieldSpec, value: Any) -> str:
    # WordPress stores non-ASCII slugs percent-encoded; the platform's slug is unicode.
    text = _expect_str(value)
    return (unquote(text) if "%" in text else text).strip().lower()


def _to_int(spec: FieldSpec, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"expected a whole number, got {_type_name(value)} {value!r}")
    if value < 0:
        raise _Invalid(f"must not be negative, got {value}")
    return value


def _to_bool(spec: FieldSpec, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_type_name(value)}")
    return value


def _to_datetime(spec: FieldSpec, value: Any) -> datetime:
    try:
        return parse_gmt(value)
    except ValueError:
        raise _Invalid(f"invalid date {value!r} (expected YYYY-MM-DDTHH:MM:SS, UTC)") from None


def _to_date(spec: FieldSpec, value: Any) -> date:
    try:
        return contract.parse_date(value)
    except ValueError:
        raise _Invalid(f"invalid date {value!r} (expected YYYY-MM-DD)") from None


def _to_url(spec: FieldSpec, value: Any) -> str:
    text = _expect_str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in text:
        # A link is never worth losing the record for, and a javascript: or relative
        # URL must never be stored: it is dropped, and the field result says why.
        raise _Tolerated(f"{text[:200]!r} is not an absolute http(s) URL; not stored")
    return text


def _to_email(spec: FieldSpec, value: Any) -> str:
    text = _expect_str(value).strip()
    if not _EMAIL_RE.match(text):
        raise _Invalid(f"{text[:200]!r} is not an email address")
    return text


def _to_list(spec: FieldSpec, value: Any) -> list:
    if not isinstance(value, list):
        raise _Invalid(f"expected a list of strings, got {_type_name(value)}")
    bad = [item for item in value if not isinstance(item, str)]
    if bad:
        raise _Invalid(f"expected a list of strings, found {_type_name(bad[0])} {bad[0]!r}")
    return [_plain_text(item) for item in value]


def _to_choice(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str) or value not in spec.choices:
        raise _Invalid(f"{value!r} is not one of {', '.join(spec.choices)}")
    return value


def _to_address(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, dict):
        raise _Invalid(
            f"expected an object with street, city, postcode, country, got {_type_name(value)}"
        )
    parts = {}
    for key in contract.ADDRESS_KEYS:
        part = value.get(key)
        if part is not None and not isinstance(part, str):
            raise _Invalid(f"{key!r} must be a string, got {_type_name(part)}")
        parts[key] = _plain_text(part).strip() if part else ""
    city_line = " ".join(p for p in (parts["postcode"], parts["city"]) if p)
    lines = [parts["street"], city_line, parts["country"]]
    return "\n".join(line for line in lines if line)


def _to_country(spec: FieldSpec, value: Any) -> str:
    text = _expect_str(value).strip()
    if not _COUNTRY_RE.match(text):
        # §9.2: legacy free text is tolerated, but the platform stores ISO codes only.
        raise _Tolerated(f"{text[:100]!r} is not a two-letter country code; not stored")
    return text.upper()


def _to_membership_status(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise _Invalid(f"expected a list of role slugs, got {_type_name(value)}")
    # §10: no recognised role = not a member: the record is kept, with no membership ("").
    return contract.membership_status_from_roles(value) or ""


_CONVERTERS = {
    "text": _to_text,
    "html": _to_html,
    "slug": _to_slug,
    "int": _to_int,
    "bool": _to_bool,
    "datetime": _to_datetime,
    "date": _to_date,
    "url": _to_url,
    "email": _to_email,
    "list": _to_list,
    "choice": _to_choice,
    "address": _to_address,
    "country": _to_country,
    "membership_status": _to_membership_status,
}


# (status, raw value, stored value, error) of one field: a tuple, as building a FieldResult
# for every field of every record showed in the sync's profile; map_record(detail=True)
# makes the FieldResults from these.
_Outcome = tuple[FieldStatus, Any, Any, str]
_PRESENT, _MISSING_STATUS = FieldStatus.PRESENT, FieldStatus.MISSING
_DEFAULT_USED, _INVALID = FieldStatus.DEFAULT_USED, FieldStatus.INVALID


def _map_value(spec: FieldSpec, raw: dict) -> _Outcome:
    source = spec.source
    if "." in source:
        found, value = _lookup(raw, source)
    else:  # the common case, inlined: this runs for every field of every record
        value = raw.get(source, _ABSENT)
        found = value is not _ABSENT
        if not found:
            value = None
    # Required means present and not null: "" is a real value (an untitled draft, §1).
    if not found or value is None:
        if spec.default is not MISSING:
            return _DEFAULT_USED, value, spec.default, ""
        error = ""
        if spec.required:
            # Named by its WordPress key: that is where an admin can fix it.
            error = f"required field {spec.source!r} is missing" + (
                " (null in WordPress)" if found else ""
            )
        empty = _EMPTY[spec.type]
        return _MISSING_STATUS, value, list(empty) if isinstance(empty, list) else empty, error
    try:
        converted = _CONVERTERS[spec.type](spec, value)
    except _Tolerated as exc:
        fallback = spec.default if spec.default is not MISSING else _EMPTY[spec.type]
        return _DEFAULT_USED, value, fallback, str(exc)
    except _Invalid as exc:
        return _INVALID, value, None, f"field {spec.source!r}: {exc}"
    if spec.max_length and isinstance(converted, str) and len(converted) > spec.max_length:
        return (
            _INVALID,
            value,
            None,
            f"field {spec.source!r} is {len(converted)} characters long "
            f"(the platform allows at most {spec.max_length})",
        )
    return _PRESENT, value, converted, ""


def _external_id(raw: dict) -> tuple[str, str]:
    value = raw.get("id")
    if isinstance(value, bool) or not isinstance(value, int):
        if value is None:
            return "", "the record has no id"
        return "", f"field 'id' must be a positive integer, got {_type_name(value)} {value!r}"
    if value <= 0:
        return "", f"field 'id' must be a positive integer, got {value}"
    return str(value), ""


def map_record(
    entity_type: str,
    raw: Any,
    specs: tuple[FieldSpec, ...] | None = None,
    *,
    detail: bool = True,
) -> MappedRecord:
    """Map one WordPress record. Never raises on bad input: problems go to `errors`.

    `detail=False` (the sync engine) leaves `fields` empty: the values, errors and hash are
    the same, without one FieldResult per field (the diagnostics show those)."""
    if specs is None:
        specs = MAPPINGS.get(entity_type)
        if specs is None:
            return MappedRecord(
                entity_type, "", None, {}, [], [f"unknown entity type {entity_type!r}"]
            )
    if not isinstance(raw, dict):
        return MappedRecord(
            entity_type,
            "",
            None,
            {},
            [],
            [f"malformed record: expected a JSON object, got {_type_name(raw)}"],
        )
    errors: list[str] = []
    external_id, id_error = _external_id(raw)
    if id_error:
        errors.append(id_error)
    modified_gmt = None
    modified = raw.get("modified_gmt")
    if modified is None:
        errors.append("required field 'modified_gmt' is missing")
    else:
        try:
            modified_gmt = parse_gmt(modified)
        except ValueError:
            errors.append(
                f"field 'modified_gmt': invalid date {modified!r} (expected YYYY-MM-DDTHH:MM:SS)"
            )
    outcomes = [_map_value(spec, raw) for spec in specs]
    values = {}
    for spec, (status, _raw, value, error) in zip(specs, outcomes, strict=True):
        if status is _INVALID or (status is _MISSING_STATUS and error):
            errors.append(error)
        else:
            values[spec.name] = value
    date_range = _DATE_RANGES.get(entity_type)
    if date_range:
        start, end = (values.get(name) for name in date_range)
        if start is not None and end is not None and end < start:
            by_name = {
                spec.name: (spec, outcome[1]) for spec, outcome in zip(specs, outcomes, strict=True)
            }
            (start_spec, start_raw), (end_spec, end_raw) = (by_name[n] for n in date_range)
            errors.append(
                f"invalid dates: {end_spec.source} {end_raw} "
                f"is before {start_spec.source} {start_raw}"
            )
    if values.get("password_protected"):
        _withhold(specs, values)
    fields = (
        [FieldResult(spec.name, spec.source, *o) for spec, o in zip(specs, outcomes, strict=True)]
        if detail
        else []
    )
    return MappedRecord(entity_type, external_id, modified_gmt, values, fields, errors)


def _withhold(specs: tuple[FieldSpec, ...], values: dict) -> None:
    """A password-protected post's body is not stored (the platform would show it to readers
    who were never asked for the password): "" instead, and `password_protected` says why.
    Part of the mapped values, so of the content hash: turning the connector's setting on
    or off makes the next full walk rewrite these records."""
    for spec in specs:
        if spec.withheld_when_protected and spec.name in values:
            values[spec.name] = ""


# --- Hashing ---------------------------------------------------------------------------------


def _json_default(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"cannot hash {type(value).__name__}")


def content_payload(values: dict) -> str:
    """The canonical JSON of mapped values (sorted keys, no spaces, dates in ISO 8601).

    What content_hash() hashes, and, being JSON of the values exactly as stored, what the
    store sends PostgreSQL as the record's fields: one encoding serves both.

    orjson writes it (the standard library's encoder, with its callback per date, was a
    tenth of a sync's worker CPU); its output is byte for byte the standard library's with
    these options (tests/engine/test_mapping.py), so the hashes of records already stored do
    not change. What orjson refuses (an integer beyond 64 bits) goes to the standard
    library as before; a lone surrogate never gets here (_valid_text fails its record).
    """
    try:
        return orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return _stdlib_payload(values)


def _stdlib_payload(values: dict) -> str:
    return json.dumps(
        values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def payload_hash(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def content_hash(values: dict) -> str:
    """Stable sha256 of mapped values: same stored content, same hash (key order irrelevant)."""
    return payload_hash(content_payload(values))


def fingerprint(record: MappedRecord) -> MappedRecord:
    """Sets a valid record's payload and digest (the engine does it ahead, off its main
    thread); returns the record."""
    if record.ok:
        record.payload = content_payload(record.values)
        record.digest = payload_hash(record.payload)
    return record


# --- Reverse mapping (two-way sync) ----------------------------------------------------------

# Writable keys that the contract does not allow to be null (§9): "" is sent as "" for these.
_NOT_NULLABLE = frozenset(
    {
        "title",
        "name",
        "display_name",
        "excerpt",
        "content",
        "description",
        "body",
        "status",
        "audience",
        "priority",
        "categories",
        "tags",
        "certifications",
        "access_level",
    }
)
# Platform representations that cannot be turned back into the contract's shape exactly.
_NOT_REVERSIBLE = frozenset({"address", "membership_status", "slug"})


def reverse_map(entity_type: str, values: dict, specs: tuple[FieldSpec, ...] | None = None) -> dict:
    """The PUT body (§7) for a platform record's values: writable fields only, reverse-mapped.

    Fields whose source is not writable in the contract (slug, roles, email, links…) and the
    platform's composed address text are left out: the plugin rejects read-only keys.
    """
    specs = specs or MAPPINGS[entity_type]
    writable = contract.WRITABLE_FIELDS.get(entity_type, frozenset())
    body: dict = {}
    withheld = bool(values.get("password_protected"))
    for spec in specs:
        top = spec.source.split(".", 1)[0]
        if top not in writable or spec.type in _NOT_REVERSIBLE or spec.name not in values:
            continue
        if withheld and spec.withheld_when_protected:
            continue  # stored as "", not the WordPress body: pushing it would erase that
        value = values[spec.name]
        if isinstance(value, datetime):
            value = contract.format_gmt(value)
        elif isinstance(value, date):
            value = contract.format_date(value)
        elif value == "" and top not in _NOT_NULLABLE:
            value = None
        elif top == "status" and value not in contract.WRITABLE_POST_STATUSES:
            continue  # "future" cannot be written back; leave the status alone
        if "." in spec.source:
            node = body.setdefault(top, {})
            parts = spec.source.split(".")
            for part in parts[1:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        else:
            body[top] = value
    return body

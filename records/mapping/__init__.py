"""The one definition of how a WordPress record becomes platform field values.

Plain Python (no Django): the sync engine, the mapping diagnostics, a record's trace, the
connector's settings form and the conflict inbox all import it, so they cannot disagree.

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
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import orjson

from connectors.wordpress import contract
from records.mapping.conversions import _CONVERTERS, _Invalid, _Tolerated, _type_name
from records.mapping.fields import (
    FIELD_TYPES,
    MAPPING_REVISION,
    MAPPINGS,
    MISSING,
    FieldSpec,
    mapping_for,
    reverse_map,
    validate_overrides,
)

__all__ = [
    "FIELD_TYPES",
    "MAPPINGS",
    "MAPPING_REVISION",
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

# --- Conversion ------------------------------------------------------------------------------


# Every record's modified_gmt and date fields: the contract's parser has the fast path.
parse_gmt = contract.parse_gmt
_Outcome = tuple[FieldStatus, Any, Any, str]
_PRESENT, _MISSING_STATUS = FieldStatus.PRESENT, FieldStatus.MISSING
_DEFAULT_USED, _INVALID = FieldStatus.DEFAULT_USED, FieldStatus.INVALID


_ABSENT = object()


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
# defaults, so the same output (tests/records/test_mapping.py compares them).
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
    these options (tests/records/test_mapping.py), so the hashes of records already stored do
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
def map_page(entity_type: str, specs: tuple[FieldSpec, ...], items: list) -> list[MappedRecord]:
    """Every record of a page mapped (map_record never raises on bad input: a bad record
    comes back with its errors) and fingerprinted, in order.

    A record is first mapped by _map_clean, which only knows the way of a record without a
    problem; any problem sends the record through map_record, the one place that words
    errors and tolerated values, so both give the same record."""
    plan = _field_plan(specs)
    date_range = _DATE_RANGES.get(entity_type)
    return [
        fingerprint(
            _map_clean(entity_type, plan, date_range, item)
            or map_record(entity_type, item, specs, detail=False)
        )
        for item in items
    ]


# Per field: (name, source, dotted, converter, spec, default, required, empty, max_length),
# the attribute and table lookups _map_value repeats for every field of every record, done
# once per page. Keyed by the specs' value; a handful of entries (types x connector settings).
_FieldPlan = tuple[tuple[str, str, bool, Any, FieldSpec, Any, bool, Any, int | None], ...]
_PLANS: dict[tuple[FieldSpec, ...], _FieldPlan] = {}


def _field_plan(specs: tuple[FieldSpec, ...]) -> _FieldPlan:
    plan = _PLANS.get(specs)
    if plan is None:
        if len(_PLANS) > 256:  # overrides differ per connector: bounded, never a leak
            _PLANS.clear()
        plan = _PLANS[specs] = tuple(
            (
                spec.name,
                spec.source,
                "." in spec.source,
                _CONVERTERS[spec.type],
                spec,
                spec.default,
                spec.required,
                _EMPTY[spec.type],
                spec.max_length,
            )
            for spec in specs
        )
    return plan


def _map_clean(
    entity_type: str, plan: _FieldPlan, date_range: tuple[str, str] | None, raw: Any
) -> MappedRecord | None:
    """The record mapped as map_record(detail=False) maps it, when it maps without any
    error or tolerated value; None otherwise (map_record then says what is wrong)."""
    if type(raw) is not dict:
        return None
    record_id = raw.get("id")
    modified = raw.get("modified_gmt")
    if type(record_id) is not int or record_id <= 0 or modified is None:
        return None
    values: dict[str, Any] = {}
    try:
        modified_gmt = parse_gmt(modified)
        for name, source, dotted, convert, spec, default, required, empty, limit in plan:
            value = _lookup(raw, source)[1] if dotted else raw.get(source)
            if value is None:
                if default is not MISSING:
                    values[name] = default
                elif required:
                    return None
                else:
                    values[name] = [] if type(empty) is list else empty
                continue
            value = convert(spec, value)
            if limit and isinstance(value, str) and len(value) > limit:
                return None
            values[name] = value
    except (ValueError, _Invalid, _Tolerated):
        return None
    if date_range:
        start, end = values.get(date_range[0]), values.get(date_range[1])
        if start is not None and end is not None and end < start:
            return None
    if values.get("password_protected"):
        _withhold(tuple(line[4] for line in plan), values)
    return MappedRecord(entity_type, str(record_id), modified_gmt, values)

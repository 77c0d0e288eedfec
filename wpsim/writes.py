"""Validation of PUT {endpoint}/{id} bodies (contract §7.1), as the plugin does it."""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime
from functools import cache
from urllib.parse import urlsplit

from connectors.wordpress import contract

__all__ = ["FIELD_SPECS", "apply_update"]

_GMT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")

STATUS = ("status", False)
TEXT = ("text", False)
NTEXT = ("text", True)

#: Writable key -> (kind, nullable), per entity type (the "W" column of §9).
FIELD_SPECS = {
    "article": {
        "title": TEXT,
        "excerpt": TEXT,
        "content": TEXT,
        "status": STATUS,
        "categories": ("strings", False),
        "tags": ("strings", False),
    },
    "member": {
        "first_name": NTEXT,
        "last_name": NTEXT,
        "display_name": TEXT,
        "phone": NTEXT,
        "job_title": NTEXT,
        "company": NTEXT,
        "address": ("address", False),
        "certifications": ("strings", False),
    },
    "event": {
        "title": TEXT,
        "description": TEXT,
        "status": STATUS,
        "start_gmt": ("gmt", True),
        "end_gmt": ("gmt", True),
        "timezone": ("timezone", True),
        "venue": NTEXT,
        "address": ("address", False),
        "capacity": ("capacity", True),
        "registration_url": ("url", True),
    },
    "document": {"title": TEXT, "status": STATUS, "access_level": ("access_level", False)},
    "conference": {
        "title": TEXT,
        "description": TEXT,
        "status": STATUS,
        "start_date": ("date", True),
        "end_date": ("date", True),
        "venue": NTEXT,
        "city": NTEXT,
        "country": ("country", True),
        "website": ("url", True),
    },
    "company": {
        "name": TEXT,
        "status": STATUS,
        "website": ("url", True),
        "industry": NTEXT,
        "description": TEXT,
    },
    "notification": {
        "title": TEXT,
        "body": TEXT,
        "status": STATUS,
        "audience": ("audience", False),
        "send_at_gmt": ("gmt", True),
        "priority": ("priority", False),
    },
}
assert {t: frozenset(s) for t, s in FIELD_SPECS.items()} == contract.WRITABLE_FIELDS

ENUMS = {
    "status": contract.WRITABLE_POST_STATUSES,
    "access_level": contract.ACCESS_LEVELS,
    "audience": contract.NOTIFICATION_AUDIENCES,
    "priority": contract.NOTIFICATION_PRIORITIES,
}


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def valid_gmt(value) -> bool:
    if not isinstance(value, str) or not _GMT.match(value):
        return False
    try:
        datetime.strptime(value.rstrip("Z"), contract.GMT_FORMAT)
    except ValueError:
        return False
    return True


def _valid_date(value) -> bool:
    if not isinstance(value, str) or not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _valid_url(value) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _check(kind: str, key: str, value) -> tuple[str, str] | None:
    """None if ``value`` is valid for ``kind`` (non-null), else (detail code, message)."""
    if kind == "text":
        ok = isinstance(value, str)
        return None if ok else ("rest_invalid_type", f"{key} is not of type string.")
    if kind in ENUMS:
        allowed = ENUMS[kind]
        if value in allowed:
            return None
        return ("rest_not_in_enum", f"{key} is not one of {', '.join(allowed)}.")
    if kind == "strings":
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return None
        return ("rest_invalid_type", f"{key} is not a list of strings.")
    if kind == "gmt":
        if valid_gmt(value):
            return None
        return ("rest_invalid_date", f"{key} must be a GMT timestamp YYYY-MM-DDTHH:MM:SS.")
    if kind == "date":
        return None if _valid_date(value) else ("rest_invalid_date", f"{key} must be YYYY-MM-DD.")
    if kind == "url":
        if _valid_url(value):
            return None
        return ("rest_invalid_url", f"{key} must be an absolute http(s) URL.")
    if kind == "country":
        if isinstance(value, str) and _COUNTRY.match(value):
            return None
        return ("rest_invalid_pattern", f"{key} must be two upper-case letters (ISO 3166-1).")
    if kind == "timezone":
        if isinstance(value, str) and value in _timezones():
            return None
        return ("rest_invalid_param", f"{key} is not a known time zone name.")
    if kind == "capacity":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return None
        return ("rest_out_of_bounds", f"{key} must be an integer >= 0.")
    raise AssertionError(kind)


def _check_address(key: str, value) -> tuple[str, str] | None:
    if not isinstance(value, dict):
        return ("rest_invalid_type", f"{key} is not of type object.")
    unknown = set(value) - set(contract.ADDRESS_KEYS)
    if unknown:
        return (
            "rest_additional_properties_forbidden",
            f"{', '.join(sorted(unknown))} is not a valid property of {key}.",
        )
    for sub, sub_value in value.items():
        if sub_value is None:
            continue
        if not isinstance(sub_value, str):
            return ("rest_invalid_type", f"{key}[{sub}] is not of type string.")
        if sub == "country" and not _COUNTRY.match(sub_value):
            return ("rest_invalid_pattern", f"{key}[country] must be two upper-case letters.")
    return None


def apply_update(entity_type: str, record: dict | None, body) -> tuple[dict, dict]:
    """Validate ``body``; returns (errors {param: (code, message)}, changes to apply).

    ``record`` is the current record (None if it does not exist: only per-field checks run).
    Nullable strings sent as "" are stored as null, as the plugin does (§1).
    """
    specs = FIELD_SPECS[entity_type]
    errors: dict[str, tuple[str, str]] = {}
    changes: dict = {}
    for key, value in body.items():
        if key == contract.IF_UNMODIFIED_SINCE_KEY:
            if not valid_gmt(value):
                errors[key] = (
                    "rest_invalid_date",
                    f"{key} must be YYYY-MM-DDTHH:MM:SS or YYYY-MM-DDTHH:MM:SSZ.",
                )
            continue
        spec = specs.get(key)
        if spec is None:
            errors[key] = (
                "rest_additional_properties_forbidden",
                f"{key} is not a writable field of {entity_type}.",
            )
            continue
        kind, nullable = spec
        if value is None:
            if nullable:
                changes[key] = None
            else:
                errors[key] = ("rest_invalid_type", f"{key} must not be null.")
            continue
        problem = _check_address(key, value) if kind == "address" else _check(kind, key, value)
        if problem:
            errors[key] = problem
            continue
        if kind == "address":
            value = {k: (v if v != "" else None) for k, v in value.items()}
        elif kind == "gmt":
            value = value.rstrip("Z")
        elif nullable and value == "":
            value = None
        changes[key] = value
    if not changes and not errors:
        errors["body"] = (
            "rest_missing_callback_param",
            f"At least one writable field of {entity_type} is required.",
        )
    if record is not None and not errors:
        for start_key, end_key, valid in (
            ("start_gmt", "end_gmt", valid_gmt),
            ("start_date", "end_date", _valid_date),
        ):
            if start_key not in specs:
                continue
            start = changes.get(start_key, record.get(start_key))
            end = changes.get(end_key, record.get(end_key))
            if valid(start) and valid(end) and end < start:
                errors[end_key] = (
                    "rest_invalid_param",
                    f"{end_key} must not be before {start_key}.",
                )
    return errors, changes

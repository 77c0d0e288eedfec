"""How one WordPress value becomes a platform value, per field type: checked and converted."""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import nh3

from connectors.wordpress import contract
from records.mapping.fields import FieldSpec


class _Invalid(Exception):
    pass


class _Tolerated(Exception):
    """A legacy value the contract says to tolerate: the default/empty value is stored."""


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
    if not value.isascii():  # _valid_text's own test, without the call for ASCII text
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
    return (_unquote(text) if "%" in text else text).strip().lower()


_ESCAPES_RE = re.compile("(?:%[0-9A-Fa-f]{2})+")


def _unquote(text: str) -> str:
    """urllib.parse.unquote(text), one C call per run of escapes instead of unquote's
    Python loop (a third of a slug's mapping). The same text: unquote decodes the bytes of
    each ASCII stretch as UTF-8 with replacement, and a decoder always resynchronises at an
    ASCII character, so decoding each run of escapes on its own gives the same characters."""
    if not text.isascii():
        return unquote(text)
    return _ESCAPES_RE.sub(
        lambda run: bytes.fromhex(run.group().replace("%", "")).decode("utf-8", "replace"), text
    )


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
        return contract.parse_gmt(value)
    except ValueError:
        raise _Invalid(f"invalid date {value!r} (expected YYYY-MM-DDTHH:MM:SS, UTC)") from None


def _to_date(spec: FieldSpec, value: Any) -> date:
    try:
        return contract.parse_date(value)
    except ValueError:
        raise _Invalid(f"invalid date {value!r} (expected YYYY-MM-DD)") from None


# An absolute http(s) URL with a plain host: what urlsplit would accept (its scheme, a
# non-empty netloc, no space), decided without it; anything else goes through urlsplit.
_PLAIN_URL_RE = re.compile(r"https?://[A-Za-z0-9.\-:@_~%!$&'()*+,;=]+(?:[/?#][\x21-\x7e]*)?\Z")


def _to_url(spec: FieldSpec, value: Any) -> str:
    text = _expect_str(value).strip()
    if _PLAIN_URL_RE.match(text):
        return text
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

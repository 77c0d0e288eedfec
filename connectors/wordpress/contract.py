"""Constants and helpers of the Association App sync API, contract version 1.

This module mirrors ``docs/wordpress-sync-api.md`` (the normative text).  It is
plain Python on purpose (no Django imports) so the simulator, the httpx client,
the sync engine and tests can all import it.  If the two ever disagree, the
document wins and this module is a bug.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

__all__ = [
    "API_PREFIX",
    "CHANGED_KEY",
    "CHANGED_MORE_KEY",
    "CHANGED_NEXT_KEY",
    "CHANGES_AFTER_PARAM",
    "CHANGE_LOG_FROM_KEY",
    "CHANGE_SEQ_KEY",
    "CONTRACT_REVISION",
    "CONTRACT_VERSION",
    "CONTRACT_VERSION_HEADER",
    "DATE_FORMAT",
    "DEFAULT_PER_PAGE",
    "DELETED_SINCE_PARAM",
    "DELETIONS_ENDPOINT",
    "ENDPOINT_ENTITY_TYPES",
    "ENTITY_ENDPOINTS",
    "ENTITY_TYPES",
    "GMT_FORMAT",
    "INCLUDE_PARAM",
    "INLINE_DELETIONS_KEY",
    "INLINE_DELETIONS_MORE_KEY",
    "KEY_HEADER",
    "MAX_INLINE_DELETIONS",
    "MAX_PER_PAGE",
    "MAX_RESPONSE_BYTES",
    "MIN_PER_PAGE",
    "PING_ENDPOINT",
    "PUSH_ENDPOINT",
    "PUSH_SIGNATURE_HEADER",
    "PUSH_TIMESTAMP_HEADER",
    "REST_NAMESPACE",
    "SERVER_TIME_KEY",
    "TOTAL_HEADER",
    "TOTAL_PAGES_HEADER",
    "format_date",
    "format_gmt",
    "membership_status_from_roles",
    "parse_date",
    "parse_gmt",
]

# --- Versioning and paths ---------------------------------------------------

CONTRACT_VERSION = 1
#: The revision of contract 1 this code implements (§14): 1.1 adds inline deletions, 1.2 the
#: site's clock on list pages, the change log (`changes_after`, `include`) and deterministic
#: rendering.
CONTRACT_REVISION = "1.2"
#: Path below the site URL, e.g. "https://example.org/" + API_PREFIX + "ping".
API_PREFIX = "api/v1/sync/"
#: The same routes are also registered in the WordPress REST API under this
#: namespace: {site_url}/wp-json/association-app/v1/ping
#: (or {site_url}/?rest_route=/association-app/v1/ping without pretty permalinks).
REST_NAMESPACE = "association-app/v1"
WP_JSON_PREFIX = "wp-json/"

# --- Headers ----------------------------------------------------------------

KEY_HEADER = "X-Association-Sync-Key"
CONTRACT_VERSION_HEADER = "X-Association-Contract-Version"
TOTAL_HEADER = "X-WP-Total"
TOTAL_PAGES_HEADER = "X-WP-TotalPages"
RETRY_AFTER_HEADER = "Retry-After"
METHOD_OVERRIDE_HEADER = "X-HTTP-Method-Override"

# --- Entity types and endpoints ----------------------------------------------

ENTITY_TYPES = (
    "article",
    "member",
    "event",
    "document",
    "conference",
    "company",
    "notification",
)

ENTITY_ENDPOINTS = {
    "article": "articles",
    "member": "members",
    "event": "events",
    "document": "documents",
    "conference": "conferences",
    "company": "companies",
    "notification": "notifications",
}
ENDPOINT_ENTITY_TYPES = {v: k for k, v in ENTITY_ENDPOINTS.items()}

PING_ENDPOINT = "ping"
DELETIONS_ENDPOINT = "deletions"
#: §15: the plugin's subscription endpoint, and the headers of the push it sends us.
PUSH_ENDPOINT = "push"
PUSH_TIMESTAMP_HEADER = "X-Association-Push-Timestamp"
PUSH_SIGNATURE_HEADER = "X-Association-Push-Signature"

#: WordPress post type(s) behind each post-based entity type (members are users).
ENTITY_POST_TYPES = {
    "article": ("post",),
    "event": ("event",),
    "document": ("document", "policy", "recall"),
    "conference": ("conference",),
    "company": ("company",),
    "notification": ("notification",),
}

# --- Pagination and limits ---------------------------------------------------

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 100
MIN_PER_PAGE = 1
#: Clients refuse a single response body larger than this (10 MiB).
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
#: Recommended client timeouts (seconds).
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
#: Recommended overlap when starting an incremental run from a high-water mark.
INCREMENTAL_OVERLAP_SECONDS = 2
#: Minimum retention of the deletions log guaranteed by the plugin.
MIN_DELETIONS_RETENTION_DAYS = 180
#: Contract 1.1 (§5.6): list query parameter asking for the entity type's deletions after this
#: GMT timestamp, returned inline as `deleted` (at most MAX_INLINE_DELETIONS entries) with
#: `deleted_more` true when there are more (the client then reads the deletions feed).
DELETED_SINCE_PARAM = "deleted_since"
INLINE_DELETIONS_KEY = "deleted"
INLINE_DELETIONS_MORE_KEY = "deleted_more"
MAX_INLINE_DELETIONS = 100
#: Contract 1.2 (§5.7): every list answer carries the site's clock and the change log's head.
SERVER_TIME_KEY = "server_time_gmt"
CHANGE_SEQ_KEY = "change_seq"
#: List query parameter: also answer the type's change-log entries numbered after this.
CHANGES_AFTER_PARAM = "changes_after"
#: ...answered as the ids changed (at most MAX_CHANGED_IDS entries' worth), the number to ask
#: from next, whether more entries follow, and the number up to which retention deleted entries.
CHANGED_KEY = "changed"
CHANGED_NEXT_KEY = "changed_next"
CHANGED_MORE_KEY = "changed_more"
CHANGE_LOG_FROM_KEY = "change_log_from"
MAX_CHANGED_IDS = 100
#: List query parameter: only the records with these ids (comma-separated, at most 100).
INCLUDE_PARAM = "include"
MAX_INCLUDE_IDS = 100
#: The plugin serves a change-log entry once it is this many seconds old (§5.7).
CHANGE_SETTLE_SECONDS = 10

# --- Enumerations ------------------------------------------------------------

#: Post statuses served by list endpoints (auto-draft, inherit, trash never are).
SERVED_POST_STATUSES = ("publish", "future", "draft", "pending", "private")
#: Statuses a client may set with PUT.
WRITABLE_POST_STATUSES = ("publish", "draft", "pending", "private")
DOCUMENT_KINDS = ("document", "policy", "recall")
ACCESS_LEVELS = ("public", "members", "admins")
NOTIFICATION_AUDIENCES = ("all", "members", "admins")
NOTIFICATION_PRIORITIES = ("low", "normal", "high", "urgent")
ADDRESS_KEYS = ("street", "city", "postcode", "country")

#: Keys accepted in a PUT body per entity type (besides "if_unmodified_since").
WRITABLE_FIELDS = {
    "article": frozenset({"title", "excerpt", "content", "status", "categories", "tags"}),
    "member": frozenset(
        {
            "first_name",
            "last_name",
            "display_name",
            "phone",
            "job_title",
            "company",
            "address",
            "certifications",
        }
    ),
    "event": frozenset(
        {
            "title",
            "description",
            "status",
            "start_gmt",
            "end_gmt",
            "timezone",
            "venue",
            "address",
            "capacity",
            "registration_url",
        }
    ),
    "document": frozenset({"title", "status", "access_level"}),
    "conference": frozenset(
        {
            "title",
            "description",
            "status",
            "start_date",
            "end_date",
            "venue",
            "city",
            "country",
            "website",
        }
    ),
    "company": frozenset({"name", "status", "website", "industry", "description"}),
    "notification": frozenset(
        {
            "title",
            "body",
            "status",
            "audience",
            "send_at_gmt",
            "priority",
        }
    ),
}
IF_UNMODIFIED_SINCE_KEY = "if_unmodified_since"

# --- Error codes -------------------------------------------------------------

ERROR_MISSING_KEY = "association_sync_missing_key"  # 401
ERROR_INVALID_KEY = "association_sync_invalid_key"  # 401
ERROR_DISABLED = "association_sync_disabled"  # 403
ERROR_INVALID_PARAM = "rest_invalid_param"  # 400
ERROR_INVALID_JSON = "rest_invalid_json"  # 400
ERROR_NO_ROUTE = "rest_no_route"  # 404
ERROR_NOT_FOUND = "association_sync_not_found"  # 404
ERROR_CONFLICT = "association_sync_conflict"  # 409
ERROR_RATE_LIMITED = "association_sync_rate_limited"  # 429
ERROR_INTERNAL = "association_sync_internal_error"  # 500

# --- Membership status mapping (suggested default, platform-side) -----------

#: Checked in this order; the first role the user has decides the status.
ROLE_STATUS_PRECEDENCE = (
    ("member", "active"),
    ("pending_member", "pending"),
    ("lapsed_member", "lapsed"),
    ("administrator", "active"),
    ("editor", "active"),
    ("author", "active"),
    ("contributor", "active"),
    ("subscriber", "pending"),
)


def membership_status_from_roles(roles, precedence=ROLE_STATUS_PRECEDENCE):
    """Suggested default mapping of WordPress role slugs to a membership status.

    Returns "active", "pending", "lapsed" or None (no recognised role: the user
    is not a member).
    """
    present = set(roles or ())
    for role, status in precedence:
        if role in present:
            return status
    return None


# --- Dates -------------------------------------------------------------------

#: Format of every *_gmt value the plugin sends: UTC, no "Z", no offset.
GMT_FORMAT = "%Y-%m-%dT%H:%M:%S"
#: Format of calendar dates (conference start_date / end_date).
DATE_FORMAT = "%Y-%m-%d"

_GMT_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z?$")
_CANONICAL_GMT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_gmt(value: str) -> datetime:
    """Parse "YYYY-MM-DDTHH:MM:SS" or "YYYY-MM-DDTHH:MM:SSZ" as an aware UTC datetime.

    Anything else (offsets, fractions, a space instead of "T", WordPress's
    zero date "0000-00-00T00:00:00") raises ValueError.
    """
    # The fast path, for the form every plugin sends: a sync parses each record's stamps
    # two or three times (the client's page check, the mapping's fields), so this is half
    # of what the general path below costs. The regex checks the digits, fromisoformat the
    # calendar (February 30th raises ValueError here as there).
    if (
        type(value) is str
        and (len(value) == 19 or (len(value) == 20 and value[19] == "Z"))
        and _CANONICAL_GMT_RE.match(value)
    ):
        return datetime.fromisoformat(value[:19] + "+00:00")
    if not isinstance(value, str):
        raise ValueError(f"GMT date must be a string, got {type(value).__name__}")
    m = _GMT_RE.match(value)
    if not m:
        raise ValueError(f"invalid GMT date {value!r}; expected YYYY-MM-DDTHH:MM:SS[Z]")
    return datetime(*(int(g) for g in m.groups()), tzinfo=UTC)


def format_gmt(dt: datetime) -> str:
    """Format an aware datetime as "YYYY-MM-DDTHH:MM:SS" in UTC (microseconds dropped).

    Naive datetimes are refused (ValueError) to avoid silent local-time bugs.
    """
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError("format_gmt() needs an aware datetime")
    return dt.astimezone(UTC).strftime(GMT_FORMAT)


def parse_date(value: str) -> date:
    """Parse a "YYYY-MM-DD" calendar date (conference start_date / end_date)."""
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ValueError(f"invalid date {value!r}; expected YYYY-MM-DD")
    return date(*(int(g) for g in _DATE_RE.match(value).groups()))


def format_date(d: date) -> str:
    """Format a calendar date as "YYYY-MM-DD"."""
    return d.strftime(DATE_FORMAT)

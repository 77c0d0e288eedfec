"""HTTP semantics of the simulated site, independent of the server: request in, reply out.

Implements the plugin's routes (contract §2-§8, checks in the §2.3 order), the WordPress
REST index, uploads, and plain theme pages.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from base64 import b64decode
from dataclasses import dataclass, field
from struct import pack

from connectors.wordpress import contract

from . import data, wp_json
from .site import invalid_params
from .writes import valid_gmt

JSON_TYPE = "application/json; charset=UTF-8"
HTML_TYPE = "text/html; charset=UTF-8"
NO_CACHE = "no-cache, must-revalidate, max-age=0, no-store, private"

SYNC_PREFIX = "/" + contract.API_PREFIX  # "/api/v1/sync/"
REST_SYNC_PREFIX = f"/wp-json/{contract.REST_NAMESPACE}"  # + "/route"
_INT = re.compile(r"^\d+$")
# `include` (§5.7): comma-separated ids, or empty (no record, only the change log).
_IDS = re.compile(r"^(?:[1-9]\d{0,19}(?:,[1-9]\d{0,19})*)?$")
_GMT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z?$")
_SINGLE = re.compile(r"^([a-z]+)/(\d+)$")
_UPLOAD = re.compile(
    r"^/wp-content/uploads/\d{4}/\d{2}/(?!missing-)[A-Za-z0-9%._-]+\.(png|jpg|jpeg|pdf)$"
)

NO_ROUTE = {
    "code": contract.ERROR_NO_ROUTE,
    "message": "No route was found matching the URL and request method.",
    "data": {"status": 404},
}

# A 16x16 baseline JPEG (from CPython's test data): real bytes image libraries decode.
JPEG = b64decode(
    "/9j/4AAQSkZJRgABAQEAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJ"
    "DRENDg8QEBEQCgwSExIQEw8QEBD/2wBDAQMDAwQDBAgEBAgQCwkLEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ"
    "EBAQEBAQEBAQEBAQEBAQEBD/wAARCAAQABADASIAAhEBAxEB/8QAFgABAQEAAAAAAAAAAAAAAAAABwQF/8QAJBAAAQQB"
    "BAICAwAAAAAAAAAAAQIDBAYFBwgSExEiABQJMTL/xAAVAQEBAAAAAAAAAAAAAAAAAAAABv/EACMRAAECBQMFAAAAAAAA"
    "AAAAAAECEQMEBQYhABIxFRZhgeH/2gAMAwEAAhEDEQA/ABSm0mobc8HmExLUlRzzEWPkJWW+ulrsaUVAseUgslSlH9LK"
    "uPryIKuWPZdskzXmm3fX5m2nF4GlVxx/HOpx4ks51+MiU/Iaad7UcUo4tILoS4kqcWkezS0hO/HvuRp0rO6hWnWO1UisZ"
    "VuFi4GFeyEpmGepa5S5SWVPuciFKRFLgSrwetnyPIB+Vb4N9mKhQMzo5po9XLdDs9d6ZVix2VEhiL9kuNPxw2gEKcDQ/r"
    "s8AuA8VAe0vdl7VOYn+27flGAUgmITjbhSmCg3BYlyeWDkMolvw4KOp1KM6iCNvngZHwetf//Z"
)
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def png(seed: int, size: int = 8) -> bytes:
    """A real ``size``x``size`` RGB PNG in a colour derived from ``seed``."""
    colour = bytes(((seed * 67) % 256, (seed * 131) % 256, (seed * 29) % 256))
    raw = b"".join(b"\x00" + colour * size for _ in range(size))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return pack(">I", len(payload)) + kind + payload + pack(">I", zlib.crc32(kind + payload))

    header = pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def html_page(title: str, text: str) -> bytes:
    return (
        '<!DOCTYPE html>\n<html lang="en-US"><head><meta charset="UTF-8">'
        f"<title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>\n"
    ).encode()


THEME_404 = html_page("Page not found", "It looks like nothing was found at this location.")
NOT_WORDPRESS = html_page("Welcome to nginx!", "If you see this page, the web server works.")
MAINTENANCE = html_page("Briefly unavailable for scheduled maintenance", "Check back in a minute.")


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = JSON_TYPE


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


def json_reply(status: int, payload, headers: list[tuple[str, str]] | None = None) -> Reply:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Reply(status, body, list(headers or []))


def plugin_reply(status: int, payload=None, *, body: bytes | None = None, headers=None) -> Reply:
    """A reply from the plugin: JSON + the contract headers (§2.5)."""
    reply = json_reply(status, payload) if body is None else Reply(status, body)
    reply.headers += [
        (contract.CONTRACT_VERSION_HEADER, str(contract.CONTRACT_VERSION)),
        ("Cache-Control", NO_CACHE),
        *(headers or []),
    ]
    return reply


def error_body(status: int, code: str, message: str, **data) -> dict:
    return {"code": code, "message": message, "data": {"status": status, **data}}


def classify(request: Request) -> tuple[str, str | None, str | None]:
    """(scope, family, route): scope is sync/rest/rest_other/uploads/other."""
    path = request.path
    if path.startswith(SYNC_PREFIX):
        return "sync", "pretty", path[len(SYNC_PREFIX) :]
    if path == REST_SYNC_PREFIX or path.startswith(REST_SYNC_PREFIX + "/"):
        return "sync", "rest", path[len(REST_SYNC_PREFIX) + 1 :]
    if path in ("/wp-json", "/wp-json/"):
        return "rest", None, None
    if path.startswith("/wp-json/"):
        return "rest_other", None, None
    rest_route = request.param("rest_route")
    if path in ("/", "/index.php") and rest_route is not None:
        prefix = f"/{contract.REST_NAMESPACE}"
        if rest_route == prefix or rest_route.startswith(prefix + "/"):
            return "sync", "rest", rest_route[len(prefix) + 1 :]
        if rest_route in ("", "/"):
            return "rest", None, None
        return "rest_other", None, None
    if path.startswith("/wp-content/uploads/"):
        return "uploads", None, None
    return "other", None, None


def endpoint_of(route: str | None) -> str | None:
    if not route:
        return None
    return route.split("/", 1)[0]


def handle(site, request: Request) -> Reply:
    scope, family, route = classify(request)
    if site.state_fault("not_wordpress"):
        return Reply(200, NOT_WORDPRESS, content_type=HTML_TYPE)
    if scope == "sync":
        return handle_sync(site, request, family, route)
    if scope == "rest":
        payload = wp_json.index(site, with_plugin=not site.state_fault("plugin_missing"))
        return json_reply(
            200,
            payload,
            [("Link", f'<{site.base_url}/wp-json/>; rel="https://api.w.org/"'), ("Allow", "GET")],
        )
    if scope == "rest_other":
        return json_reply(404, NO_ROUTE)
    if scope == "uploads":
        match = _UPLOAD.match(request.path)
        if not match or request.method != "GET":
            return Reply(404, THEME_404, content_type=HTML_TYPE)
        ext = match.group(1)
        if ext == "png":
            return Reply(200, png(zlib.crc32(request.path.encode())), content_type="image/png")
        if ext == "pdf":
            return Reply(200, PDF, content_type="application/pdf")
        return Reply(200, JPEG, content_type="image/jpeg")
    if request.path in ("/", "/index.php"):
        page = html_page(site.name, "Just another WordPress site.")
        link = [("Link", f'<{site.base_url}/wp-json/>; rel="https://api.w.org/"')]
        return Reply(200, page, link, content_type=HTML_TYPE)
    return Reply(404, THEME_404, content_type=HTML_TYPE)


def handle_sync(site, request: Request, family: str, route: str) -> Reply:
    # Site-level states first: a missing plugin never gets to run its checks.
    if site.state_fault("plugin_missing"):
        if family == "pretty":
            return Reply(404, THEME_404, content_type=HTML_TYPE)
        return json_reply(404, NO_ROUTE)
    if family == "pretty" and site.state_fault("permalinks"):
        return Reply(404, THEME_404, content_type=HTML_TYPE)
    if route == "" and request.method == "GET":
        return json_reply(200, wp_json.namespace_index(site))

    method = request.method
    if (
        method == "POST"
        and request.headers.get(contract.METHOD_OVERRIDE_HEADER.lower(), "").upper() == "PUT"
    ):
        method = "PUT"

    # §2.3 step 1: route + method.
    kind, entity_type, record_id = None, None, None
    if route == contract.PING_ENDPOINT and method == "GET":
        kind = "ping"
    elif route == contract.DELETIONS_ENDPOINT and method == "GET":
        kind = "deletions"
    elif route == contract.PUSH_ENDPOINT and method == "POST" and site.push_supported:
        kind = "push"
    elif route in contract.ENDPOINT_ENTITY_TYPES and method == "GET":
        kind, entity_type = "list", contract.ENDPOINT_ENTITY_TYPES[route]
    else:
        match = _SINGLE.match(route)
        if match and match.group(1) in contract.ENDPOINT_ENTITY_TYPES and method in ("GET", "PUT"):
            kind = "put" if method == "PUT" else "single"
            entity_type = contract.ENDPOINT_ENTITY_TYPES[match.group(1)]
            record_id = int(match.group(2))
    if kind is None or (entity_type is not None and entity_type not in site.entity_types):
        return plugin_reply(404, NO_ROUTE)
    # Step 2: sync enabled.
    if site.state_fault("disabled"):
        return plugin_reply(
            403,
            error_body(
                403, contract.ERROR_DISABLED, "The sync API is disabled in the plugin settings."
            ),
        )
    # Step 3: key.
    sent = request.headers.get(contract.KEY_HEADER.lower(), "")
    if not sent:
        return plugin_reply(
            401,
            error_body(
                401, contract.ERROR_MISSING_KEY, "The X-Association-Sync-Key header is missing."
            ),
        )
    if sent != site.key:
        return plugin_reply(
            401, error_body(401, contract.ERROR_INVALID_KEY, "The sync key is not valid.")
        )
    # Step 4: rate limit, announced on every answer past it (§12).
    retry_after, announced = site.take_rate()
    if retry_after is not None:
        reply = rate_limited(retry_after)
    else:
        reply = _answer(site, request, kind, entity_type, record_id)
    reply.headers.extend(announced)
    return reply


def _answer(site, request: Request, kind: str, entity_type, record_id) -> Reply:
    """The answer of a request that passed the checks of §2.3."""
    if kind == "ping":
        return plugin_reply(200, site.ping())
    if kind == "list":
        return list_records(site, request, entity_type)
    if kind == "deletions":
        return list_deletions(site, request)
    if kind == "push":
        return subscribe_push(site, request)
    if kind == "single":
        if not site.has(entity_type, record_id):
            return plugin_reply(404, site.not_found(entity_type, record_id))
        return plugin_reply(200, body=site.record_json(entity_type, record_id))
    # PUT
    try:
        body = json.loads(request.body.decode("utf-8")) if request.body else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        return plugin_reply(
            400,
            error_body(
                400, contract.ERROR_INVALID_JSON, "The request body is not a valid JSON object."
            ),
        )
    status, payload = site.write(entity_type, record_id, body)
    return plugin_reply(status, payload)


def subscribe_push(site, request: Request) -> Reply:
    """POST push (§15.2): store the platform's URL and secret; with "test", push once now."""
    try:
        body = json.loads(request.body.decode("utf-8")) if request.body else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        return plugin_reply(
            400,
            error_body(
                400, contract.ERROR_INVALID_JSON, "The request body is not a valid JSON object."
            ),
        )
    status, payload = site.pusher.subscribe(
        str(body.get("url") or ""), str(body.get("secret") or ""), bool(body.get("test"))
    )
    return plugin_reply(status, payload)


def rate_limited(retry_after: int) -> Reply:
    return plugin_reply(
        429,
        error_body(
            429,
            contract.ERROR_RATE_LIMITED,
            f"Too many requests. Retry after {retry_after} seconds.",
            retry_after=retry_after,
        ),
        headers=[(contract.RETRY_AFTER_HEADER, str(retry_after))],
    )


def _paging(request: Request, errors: dict) -> tuple[int, int]:
    page, per_page = 1, contract.DEFAULT_PER_PAGE
    raw = request.param("page")
    if raw is not None:
        if not _INT.match(raw):
            errors["page"] = ("rest_invalid_type", "page is not of type integer.")
        elif int(raw) < 1:
            errors["page"] = ("rest_out_of_bounds", "page must be greater than or equal to 1")
        else:
            page = int(raw)
    raw = request.param("per_page")
    if raw is not None:
        if not _INT.match(raw):
            errors["per_page"] = ("rest_invalid_type", "per_page is not of type integer.")
        elif not contract.MIN_PER_PAGE <= int(raw) <= contract.MAX_PER_PAGE:
            errors["per_page"] = (
                "rest_out_of_bounds",
                "per_page must be between 1 (inclusive) and 100 (inclusive)",
            )
        else:
            per_page = int(raw)
    return page, per_page


def _timestamp(request: Request, name: str, errors: dict) -> str | None:
    raw = request.param(name)
    if raw is None:
        return None
    if not _GMT.match(raw) or not valid_gmt(raw):
        errors[name] = ("rest_invalid_date", "Invalid date.")
        return None
    return raw.rstrip("Z")


def _invalid(errors: dict) -> Reply:
    return plugin_reply(400, invalid_params(errors))


def _list_reply(
    items: list[bytes], page: int, per_page: int, total: int, extra: bytes = b""
) -> Reply:
    total_pages = math.ceil(total / per_page)
    body = b"".join(
        (
            b'{"items":[',
            b",".join(items),
            b'],"page":%d,"per_page":%d,"total":%d,"total_pages":%d'
            % (page, per_page, total, total_pages),
            extra,
            b"}",
        )
    )
    return plugin_reply(
        200,
        body=body,
        headers=[
            (contract.TOTAL_HEADER, str(total)),
            (contract.TOTAL_PAGES_HEADER, str(total_pages)),
        ],
    )


def list_records(site, request: Request, entity_type: str) -> Reply:
    errors: dict = {}
    page, per_page = _paging(request, errors)
    modified_after = _timestamp(request, "modified_after", errors)
    after_id = None
    raw = request.param("after_id")
    if raw is not None:
        if not _INT.match(raw):
            errors["after_id"] = ("rest_invalid_type", "after_id is not of type integer.")
        elif request.param("modified_after") is None:
            errors["after_id"] = (
                "rest_missing_dependency",
                "after_id requires modified_after.",
            )
        else:
            after_id = int(raw)
    deleted_since = None
    if site.inline_deletions:
        deleted_since = _timestamp(request, contract.DELETED_SINCE_PARAM, errors)
    changes_after = include = None
    if site.change_log:
        raw = request.param(contract.CHANGES_AFTER_PARAM)
        if raw is not None:
            if not _INT.match(raw):
                errors["changes_after"] = (
                    "rest_invalid_type",
                    "changes_after is not of type integer.",
                )
            else:
                changes_after = int(raw)
        raw = request.param(contract.INCLUDE_PARAM)
        if raw is not None:
            if not _IDS.match(raw):
                errors["include"] = ("rest_invalid_type", "include must be a list of ids.")
            elif raw.count(",") >= contract.MAX_INCLUDE_IDS:
                errors["include"] = ("rest_out_of_bounds", "include lists at most 100 ids.")
            else:
                include = [int(i) for i in raw.split(",") if i]
    if errors:
        return _invalid(errors)
    # Read before the records, as the plugin does: an entry settled now is older than them.
    head = site.change_head() if site.change_log else None
    items, total = site.query(
        entity_type,
        modified_after=modified_after,
        after_id=after_id,
        page=page,
        per_page=per_page,
        include=include,
    )
    extra = b""
    if site.change_log:
        extra += b',"server_time_gmt":"%s","change_seq":%d' % (
            data.gmt(site.clock.now()).encode(),
            head,
        )
    if deleted_since is not None:
        extra += _inline_deletions(site, entity_type, deleted_since)
    if changes_after is not None:
        ids, after, more = site.changes_after(entity_type, changes_after, head)
        extra += b',"changed":%s,"changed_next":%d,"changed_more":%s,"change_log_from":%d' % (
            json.dumps(ids, separators=(",", ":")).encode(),
            after,
            b"true" if more else b"false",
            site.pruned_seq,
        )
    return _list_reply(items, page, per_page, total, extra)


def _inline_deletions(site, entity_type: str, since: str) -> bytes:
    """Contract 1.1 (§5.6): this type's deletions after `since`, capped, with the flag that
    sends the client to the deletions feed for the rest."""
    cap = contract.MAX_INLINE_DELETIONS
    entries, total = site.query_deletions(since=since, per_page=cap, entity_type=entity_type)
    deleted = [{"id": e["id"], "deleted_gmt": e["deleted_gmt"]} for e in entries]
    return b',"deleted":%s,"deleted_more":%s' % (
        json.dumps(deleted, separators=(",", ":")).encode(),
        b"true" if total > len(deleted) else b"false",
    )


def list_deletions(site, request: Request) -> Reply:
    errors: dict = {}
    page, per_page = _paging(request, errors)
    since = _timestamp(request, "since", errors)
    if errors:
        return _invalid(errors)
    entries, total = site.query_deletions(since=since, page=page, per_page=per_page)
    items = [json.dumps(e, separators=(",", ":")).encode() for e in entries]
    return _list_reply(items, page, per_page, total)

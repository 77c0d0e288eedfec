"""List answers (contract §5): the Page a caller sees, the shape checks every list answer
passes before anyone reads it, and the keyset and page-number walks over them (§5.5, §8)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from . import contract
from .answers import is_int
from .errors import InvalidResponse, ResponseTooLarge

if TYPE_CHECKING:
    from .client import WordPressClient

_ITEM_HEAD = re.compile(
    rb'"items"\s*:\s*\[\s*\{\s*"id"\s*:\s*(\d+)\s*,\s*"modified_gmt"\s*:\s*"([^"]{1,40})"'
)


@dataclass
class Page:
    """One list response.

    ``request_count`` is the number of HTTP requests this page took (1 unless retries,
    redirects or per_page halving happened). ``skipped`` lists records the client could not
    download because a single record exceeded the size cap (§12): ``{"id", "modified_gmt",
    "error"}`` each; the caller reports them as failed for that record.

    ``deleted`` (contract 1.1, §5.6) is the entity type's inline deletions
    (``{"id", "deleted_gmt"}`` each) when they were asked for and the site sent them;
    ``None`` when the site did not (a 1.0 plugin): the caller then reads the deletions feed,
    as it also must when ``deleted_more`` says the list was capped.
    """

    items: list[dict]
    page: int
    per_page: int
    total: int
    total_pages: int
    request_count: int
    skipped: list[dict] = field(default_factory=list)
    deleted: list[dict] | None = None
    deleted_more: bool = False
    # Contract 1.2 (§5.7), None from an older plugin: the site's clock when it answered and
    # the change log's head; with `changes_after`, the ids it names (`changed`, None when not
    # asked or not served), where to continue, whether more follow, and where the log starts.
    server_time: datetime | None = None
    change_seq: int | None = None
    changed: list[int] | None = None
    changed_next: int | None = None
    changed_more: bool = False
    change_log_from: int = 0


@dataclass
class Result:
    """A 2xx answer's JSON object, its response, and the requests it took."""

    data: Any
    response: httpx.Response
    requests: int
    timed_out_before: bool = False


def entry_problem(item: Any, stamp_key: str) -> str | None:
    """What is wrong with one entry of a list answer (a record, or a deletion with its
    `deleted_gmt`), said after its position; None when its id and time stamp are sound."""
    if not isinstance(item, dict):
        return f"is {type(item).__name__}, not an object"
    if not is_int(item.get("id")):
        return "has no integer 'id'"
    try:
        contract.parse_gmt(item.get(stamp_key))
    except ValueError:
        return f"(id {item.get('id')}) has an invalid '{stamp_key}'"
    return None


def list_page(result: Result, url: str, *, keyed: bool) -> Page:
    """A list answer, shape-checked (items, totals, headers, the 1.2 keys) into a Page."""
    data = result.data

    def bad(reason: str) -> InvalidResponse:
        return InvalidResponse(
            f"The site's list answer for {url} has the wrong shape: {reason}.",
            status_code=result.response.status_code,
            url=str(result.response.url),
        )

    items = data.get("items")
    if not isinstance(items, list):
        raise bad(f"'items' is {type(items).__name__}, not a list")
    numbers = {}
    for key in ("page", "per_page", "total", "total_pages"):
        value = data.get(key)
        if not is_int(value) or value < 0:
            raise bad(f"'{key}' is {value!r}, not a non-negative integer")
        numbers[key] = value
    per_page, total, total_pages = numbers["per_page"], numbers["total"], numbers["total_pages"]
    if per_page < 1:
        raise bad(f"'per_page' is {per_page}")
    if total_pages != math.ceil(total / per_page):
        raise bad(f"total {total} and total_pages {total_pages} disagree for per_page {per_page}")
    if len(items) > per_page:
        raise bad(f"{len(items)} items for per_page {per_page}")
    if len(items) > total:
        raise bad(f"{len(items)} items but total is {total}")
    for header, key in (
        (contract.TOTAL_HEADER, "total"),
        (contract.TOTAL_PAGES_HEADER, "total_pages"),
    ):
        value = result.response.headers.get(header)
        if value is not None and value.strip() != str(numbers[key]):
            raise bad(f"header {header}: {value} differs from body {key} {numbers[key]}")
    stamp_key = "modified_gmt" if keyed else "deleted_gmt"
    for index, item in enumerate(items):
        problem = entry_problem(item, stamp_key)
        if problem:
            raise bad(f"item {index} {problem}")
        if not keyed and not isinstance(item.get("entity_type"), str):
            raise bad(f"item {index} has no 'entity_type'")
    page = Page(
        items=items,
        page=numbers["page"],
        per_page=per_page,
        total=total,
        total_pages=total_pages,
        request_count=result.requests,
    )
    if keyed:
        change_capture(data, page, bad)
    return page


def change_capture(data: dict, page: Page, bad) -> None:
    """The contract 1.2 keys of a list answer (§5.7); absent from an older plugin."""
    stamp = data.get(contract.SERVER_TIME_KEY)
    if stamp is not None:
        try:
            page.server_time = contract.parse_gmt(stamp)
        except (TypeError, ValueError):
            raise bad(f"'server_time_gmt' is {stamp!r}, not a GMT time") from None
    for key, attr in (
        (contract.CHANGE_SEQ_KEY, "change_seq"),
        (contract.CHANGED_NEXT_KEY, "changed_next"),
        (contract.CHANGE_LOG_FROM_KEY, "change_log_from"),
    ):
        value = data.get(key)
        if value is None:
            continue
        if not is_int(value) or value < 0:
            raise bad(f"'{key}' is {value!r}, not a non-negative integer")
        setattr(page, attr, value)
    changed = data.get(contract.CHANGED_KEY)
    if changed is None:
        return
    if not isinstance(changed, list) or not all(is_int(i) and i > 0 for i in changed):
        raise bad("'changed' is not a list of record ids")
    if len(changed) > contract.MAX_CHANGED_IDS:
        raise bad(f"'changed' has {len(changed)} ids, more than {contract.MAX_CHANGED_IDS}")
    more = data.get(contract.CHANGED_MORE_KEY, False)
    if not isinstance(more, bool):
        raise bad(f"'changed_more' is {more!r}, not true or false")
    if page.changed_next is None:
        raise bad("'changed' comes without 'changed_next'")
    page.changed, page.changed_more = changed, more


def inline_deletions(result: Result, url: str) -> tuple[list[dict] | None, bool]:
    """A list answer's `deleted` / `deleted_more` (§5.6): (None, False) when the site
    sent none (a contract 1.0 plugin ignores `deleted_since`)."""
    data = result.data
    if contract.INLINE_DELETIONS_KEY not in data:
        return None, False

    def bad(reason: str) -> InvalidResponse:
        return InvalidResponse(
            f"The site's list answer for {url} has the wrong shape: {reason}.",
            status_code=result.response.status_code,
            url=str(result.response.url),
        )

    deleted = data[contract.INLINE_DELETIONS_KEY]
    more = data.get(contract.INLINE_DELETIONS_MORE_KEY, False)
    if not isinstance(deleted, list):
        raise bad(f"'deleted' is {type(deleted).__name__}, not a list")
    if not isinstance(more, bool):
        raise bad(f"'deleted_more' is {more!r}, not true or false")
    if len(deleted) > contract.MAX_INLINE_DELETIONS:
        raise bad(
            f"'deleted' has {len(deleted)} entries, more than the "
            f"{contract.MAX_INLINE_DELETIONS} allowed"
        )
    for index, entry in enumerate(deleted):
        problem = entry_problem(entry, "deleted_gmt")
        if problem:
            raise bad(f"deleted entry {index} {problem}")
    return deleted, more


def check_record(data: dict, url: str) -> None:
    if not is_int(data.get("id")):
        raise InvalidResponse(
            f"The site's answer for {url} is not a record (no integer 'id').", url=url
        )


def oversized_record(exc: ResponseTooLarge) -> dict | None:
    """id + modified_gmt of the single record in an oversized per_page=1 answer."""
    match = _ITEM_HEAD.search(exc.prefix)
    if not match:
        return None
    stamp = match.group(2).decode("ascii", errors="replace")
    try:
        contract.parse_gmt(stamp)
    except ValueError:
        return None
    return {
        "id": int(match.group(1)),
        "modified_gmt": stamp,
        "error": f"The record is larger than the {exc.limit:,}-byte response limit; skipped.",
    }


def keyset_pages(
    client: WordPressClient,
    endpoint: str,
    *,
    modified_after: datetime | None,
    per_page: int,
    deleted_since: datetime | None,
    changes_after: int | None,
) -> Iterator[Page]:
    """The keyset walk of WordPressClient.iter_pages (§5.5), which documents it. A response
    over the size cap is asked again with per_page halved, down to one record, which is then
    skipped (reported in the Page) if it alone is too large."""
    if not contract.MIN_PER_PAGE <= per_page <= contract.MAX_PER_PAGE:
        raise ValueError(f"per_page must be between 1 and {contract.MAX_PER_PAGE}")
    # (modified_gmt, id) of the last record delivered; id None before the first page.
    cursor: tuple[str | None, int | None] = (
        contract.format_gmt(modified_after) if modified_after else None,
        None,
    )
    size = per_page
    page_start = client.request_count
    first = True
    url = client.api_url(endpoint)
    while True:
        params = _keyset_params(cursor, size)
        if first and deleted_since is not None:
            # Only the first request: every page would repeat the same entries.
            params[contract.DELETED_SINCE_PARAM] = contract.format_gmt(deleted_since)
        if first and changes_after is not None:
            params[contract.CHANGES_AFTER_PARAM] = changes_after
        try:
            result = client._call("GET", url, params=params)
        except ResponseTooLarge as exc:
            if size > 1:
                # §12: retry the same request with per_page halved (down to 1).
                size = max(1, size // 2)
                continue
            page = _skipped_page(exc, cursor)
            page.request_count, page_start = client.request_count - page_start, client.request_count
            cursor, first = (page.skipped[0]["modified_gmt"], page.skipped[0]["id"]), False
            yield page
            if page.total <= 1:
                return
            continue
        page = list_page(result, url, keyed=True)
        page.request_count, page_start = client.request_count - page_start, client.request_count
        if page.items:
            _check_advances(page, cursor, endpoint, result)
        if first and deleted_since is not None:
            page.deleted, page.deleted_more = inline_deletions(result, url)
        first = False
        yield page
        if not page.items or page.total_pages <= 1:
            return
        cursor = (page.items[-1]["modified_gmt"], page.items[-1]["id"])
        # After a halving, grow back so one oversized record does not slow the whole run.
        size = min(per_page, size * 2)


def _keyset_params(cursor: tuple[str | None, int | None], size: int) -> dict[str, Any]:
    params: dict[str, Any] = {"per_page": size}
    if cursor[0] is not None:
        params["modified_after"] = cursor[0]
    if cursor[1] is not None:
        params["after_id"] = cursor[1]
    return params


def _skipped_page(exc: ResponseTooLarge, cursor: tuple[str | None, int | None]) -> Page:
    """The page reporting the single record too large to download (per_page=1), which the
    walk then steps past; the error again when the record cannot be named or would not
    move the walk forward."""
    skipped = oversized_record(exc)
    if skipped is None or (skipped["modified_gmt"], skipped["id"]) <= (
        cursor[0] or "",
        cursor[1] or -1,
    ):
        raise exc
    total = exc.headers.get(contract.TOTAL_HEADER, "")
    total = int(total) if total.isdigit() else 0
    return Page([], 1, 1, total, total, 0, skipped=[skipped])


def _check_advances(
    page: Page, cursor: tuple[str | None, int | None], endpoint: str, result: Result
) -> None:
    """A page that does not come after the cursor would make the walk loop for ever."""
    last = page.items[-1]
    if cursor[0] is not None and (last["modified_gmt"], last["id"]) <= (cursor[0], cursor[1] or -1):
        raise InvalidResponse(
            f"The site returned {endpoint} records that do not come after the "
            f"requested position (modified_after={cursor[0]}, after_id={cursor[1]}); "
            "the plugin does not implement keyset paging (contract §5.5). "
            "Update the Association App plugin.",
            status_code=200,
            url=str(result.response.url),
        )


def deletion_pages(
    client: WordPressClient, since: datetime | None, per_page: int
) -> Iterator[Page]:
    """The deletions feed (§8), page-number paging (the feed is append-only)."""
    page_number = 1
    while True:
        params: dict[str, Any] = {"page": page_number, "per_page": per_page}
        if since is not None:
            params["since"] = contract.format_gmt(since)
        url = client.api_url(contract.DELETIONS_ENDPOINT)
        result = client._call("GET", url, params=params)
        page = list_page(result, url, keyed=False)
        yield page
        if not page.items or page_number >= page.total_pages:
            return
        page_number += 1

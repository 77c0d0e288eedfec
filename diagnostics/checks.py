"""The five steps of the connection test, as a small registry of checks.

Plain Python (no Django, no Celery): each check takes a CheckContext, returns the message to
show when it passes and raises CheckFailed (or a WordPressError, whose `.message` is already
written for an administrator) when it fails. `run_checks` runs them in order; a check whose
prerequisite did not pass is reported as skipped, naming the step that failed.

The probes follow docs/wordpress-sync-api.md §13.3.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from connectors.wordpress import contract
from connectors.wordpress.errors import PLUGIN_SETTINGS, RequestTimedOut, WordPressError

logger = logging.getLogger(__name__)

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
BODY_PREVIEW_CHARS = 200


class CheckFailed(Exception):
    """A check's failure; the message tells the administrator what is wrong and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class CheckContext:
    """What the checks need: a WordPress client and the connector's settings, as plain values.

    `key_problem` is set when the connector has no usable API key (none saved, or it cannot be
    decrypted): the key-less probes still run, the key check fails with that message.
    `facts` carries findings from one check to the next (REST index, ping answer).
    """

    client: Any
    site_url: str
    enabled_entity_types: list[str]
    key_problem: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    # Push (§15): subscribes the plugin and asks it to push once to the platform; returns
    # push.services.subscribe()'s answer. None: not asked (no connector behind the test).
    push_round_trip: Callable[[], dict] | None = None


@dataclass
class StepResult:
    key: str
    name: str
    status: str
    message: str
    duration_ms: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    key: str
    name: str
    run: Callable[[CheckContext], str]
    requires: tuple[str, ...] = ()


CHECKS: list[Check] = []


def check(key: str, name: str, *, requires: Iterable[str] = ()):
    """Register a check; the registry's order is the order the steps run and are shown in."""

    def register(func: Callable[[CheckContext], str]):
        CHECKS.append(Check(key=key, name=name, run=func, requires=tuple(requires)))
        return func

    return register


def body_preview(text: str, limit: int = BODY_PREVIEW_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_object(response) -> dict | None:
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _site_path(ctx: CheckContext, path: str) -> str:
    return ctx.site_url.rstrip("/") + "/" + path.lstrip("/")


# --- 1. HTTP reachable ---------------------------------------------------------------------


@check("reachable", "HTTP reachable")
def check_reachable(ctx: CheckContext) -> str:
    if ctx.client is None:
        # The client refused the site URL itself (not http(s), no host...).
        raise ctx.facts["client_error"]
    ctx.client.check_reachable()
    parts = urlsplit(ctx.site_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "https":
        return f"TCP connection to {parts.hostname}:{port} opened and the TLS certificate is valid."
    return f"TCP connection to {parts.hostname}:{port} opened (plain http, no TLS)."


# --- 2. REST API root ----------------------------------------------------------------------


def describe_rest_index(status_code: int, data: Any, raw_text: str, url: str) -> str:
    """Why a /wp-json/ answer is not a WordPress REST API index; "" if it is one (§13.3, 2)."""
    if status_code != 200:
        hint = {
            401: "the REST API requires a login (a security plugin restricts it to members)",
            403: "access is forbidden (a security plugin, the host or a firewall blocks it)",
            404: "the REST API is disabled, or the site URL does not point at the WordPress home",
        }.get(status_code, "the site or the host is failing")
        return (
            f"{url} answered HTTP {status_code}: {hint}. The REST API must be reachable "
            f"without login. Answer: {body_preview(raw_text) or '(empty body)'}"
        )
    if not isinstance(data, dict):
        return (
            f"{url} did not answer with a JSON object, so this is not a WordPress REST API: "
            "check that the site URL is the WordPress home (not a landing page or another "
            "application) and that no plugin or firewall replaces the REST API. Answer: "
            f"{body_preview(raw_text) or '(empty body)'}"
        )
    namespaces = data.get("namespaces")
    if not isinstance(namespaces, list) or "wp/v2" not in namespaces:
        return (
            f'{url} answered JSON, but not a WordPress REST API index (no "wp/v2" namespace): '
            "the site URL points at something that is not WordPress, or a plugin hides the "
            "core REST API."
        )
    if not isinstance(data.get("routes"), dict):
        return (
            f"{url} answered a REST index without a route list: a plugin or the host filters "
            "the REST API index. Allow the /wp-json/ index to be read without login."
        )
    return ""


@dataclass
class RestIndexAnswer:
    url: str
    status_code: int
    data: Any
    text: str


def fetch_rest_index(ctx: CheckContext) -> RestIndexAnswer:
    """GET /wp-json/ without the key; if that is not JSON, ?rest_route=/ (§13.3 step 2)."""
    first = None
    for path in (contract.WP_JSON_PREFIX, "?rest_route=/"):
        response = ctx.client.probe(path, with_key=False)
        answer = RestIndexAnswer(
            url=_site_path(ctx, path),
            status_code=response.status_code,
            data=_json_object(response),
            text=response.text,
        )
        if answer.data is not None:
            return answer
        first = first or answer
    return first


@check("rest_root", "REST API root", requires=("reachable",))
def check_rest_root(ctx: CheckContext) -> str:
    index = fetch_rest_index(ctx)
    ctx.facts["rest_index"] = index
    problem = describe_rest_index(index.status_code, index.data, index.text, index.url)
    ctx.facts["rest_index_problem"] = problem
    if problem:
        raise CheckFailed(problem)
    data = index.data
    ctx.facts["plugin_namespace_listed"] = contract.REST_NAMESPACE in data["namespaces"]
    timezone_name = data.get("timezone_string") or f"UTC offset {data.get('gmt_offset', 0)} h"
    listed = (
        "lists the Association App namespace"
        if ctx.facts["plugin_namespace_listed"]
        else f"does not list the Association App namespace ({contract.REST_NAMESPACE})"
    )
    return (
        f"WordPress REST API index found at {index.url}: “{data.get('name', '')}”"
        f" ({data.get('home') or data.get('url', '')}), timezone {timezone_name}; it {listed}."
    )


# --- 3. Plugin installed -------------------------------------------------------------------


@check("plugin", "Plugin installed", requires=("reachable",))
def check_plugin(ctx: CheckContext) -> str:
    path = contract.API_PREFIX + contract.PING_ENDPOINT
    url = _site_path(ctx, path)
    response = ctx.client.probe(path, with_key=False)
    data = _json_object(response)
    code = data.get("code") if data else None
    if response.status_code == 401 and code in (
        contract.ERROR_MISSING_KEY,
        contract.ERROR_INVALID_KEY,
    ):
        return (
            "The Association App sync endpoints are registered: the ping without a key "
            "was refused with 401, as it should be."
        )
    if response.status_code == 403 and code == contract.ERROR_DISABLED:
        raise CheckFailed(
            "The Association App plugin is installed but its sync API is switched off. "
            f"Turn it on in {PLUGIN_SETTINGS} (tick “Sync API: Enabled”), then test again."
        )
    if response.status_code == 404:
        raise CheckFailed(_explain_missing_plugin(ctx, url))
    if response.status_code == 429:
        raise CheckFailed(
            f"{url} answered 429 Too Many Requests: the plugin's rate limit (or the host's) "
            f"is exhausted. Wait a minute and test again, or raise the limit in "
            f"{PLUGIN_SETTINGS}."
        )
    if response.status_code >= 500:
        raise CheckFailed(
            f"{url} answered HTTP {response.status_code}: WordPress or the web server failed "
            f"(maintenance mode, a PHP fatal error). Answer: "
            f"{body_preview(response.text) or '(empty body)'}. Check the PHP error log."
        )
    raise CheckFailed(_explain_unexpected_ping(ctx, url, response, data))


def _explain_unexpected_ping(ctx: CheckContext, url: str, response, data: dict | None) -> str:
    expected = (
        f"{url} without a key should be refused by the Association App plugin (HTTP 401 "
        f"{contract.ERROR_MISSING_KEY})"
    )
    status = response.status_code
    answer = f"HTTP {status}" + (f" {data.get('code')}" if data and data.get("code") else "")
    preview = body_preview(response.text) or "(empty body)"
    if ctx.facts.get("rest_index_problem") and data is None:
        return (
            f"{expected}, but it answered {answer} with something that is not JSON ({preview}). "
            "Like the “REST API root” step, this shows the site does not answer like "
            "WordPress: check that the connector's site URL is the WordPress site's address."
        )
    if 200 <= status < 300:
        if data is None:
            return (
                f"{expected}, but it answered {answer} with something that is not JSON "
                f"({preview}): a page cache, CDN or the theme answers in place of the plugin. "
                "Exclude /api/v1/sync/ from caching and check the plugin is active."
            )
        return (
            f"{expected}, but it answered {answer} without a key: a page cache or proxy served "
            "a stored answer. Exclude /api/v1/sync/ from caching."
        )
    return (
        f"{expected}, but it answered {answer}: {preview}. Something in front of WordPress "
        "(HTTP authentication, a firewall, a security plugin) answers instead: allow "
        "requests to /api/v1/sync/."
    )


def _explain_missing_plugin(ctx: CheckContext, url: str) -> str:
    # The plugin also answers under ?rest_route=, which needs no rewrite rules: if it answers
    # there, the plugin is active and only the permalinks need flushing (§2.1, §13.3).
    namespace_listed = ctx.facts.get("plugin_namespace_listed", False)
    if not namespace_listed:
        try:
            fallback = ctx.client.probe(
                f"?rest_route=/{contract.REST_NAMESPACE}/{contract.PING_ENDPOINT}",
                with_key=False,
            )
        except WordPressError:
            fallback = None
        data = _json_object(fallback) if fallback is not None else None
        namespace_listed = bool(
            fallback is not None
            and fallback.status_code in (401, 403)
            and data
            and str(data.get("code", "")).startswith("association_sync_")
        )
    if namespace_listed:
        return (
            f"{url} answered 404 although the Association App plugin is active: WordPress's "
            "rewrite rules are stale or permalinks are set to “Plain”. Flush permalinks: open "
            "WP Admin → Settings → Permalinks, choose any setting but “Plain” and click "
            "Save Changes, then test again."
        )
    if ctx.facts.get("rest_index_problem"):
        return (
            f"{url} answered 404 and the site does not answer like WordPress (see “REST API "
            "root”): check the site URL. If it is right, install and activate the Association "
            "App plugin, then flush permalinks (WP Admin → Settings → Permalinks → Save Changes)."
        )
    return (
        f"{url} answered 404: the Association App plugin is not installed or not activated. "
        "Install and activate it in WP Admin → Plugins, then flush permalinks (WP Admin → "
        "Settings → Permalinks → Save Changes) and test again."
    )


# --- 4. API key valid ----------------------------------------------------------------------


@check("api_key", "API key valid", requires=("plugin",))
def check_api_key(ctx: CheckContext) -> str:
    if ctx.key_problem:
        raise CheckFailed(ctx.key_problem)
    # ping() checks the contract version and the entity_types list (UnsupportedContractVersion,
    # InvalidResponse) and turns a 401 into AuthenticationFailed with what to do.
    ping = ctx.client.ping()
    ctx.facts["ping"] = ping
    served = ", ".join(ping["entity_types"]) or "no entity types"
    return (
        f"Key accepted by “{ping.get('site_name', '')}”: Association App "
        f"{ping.get('plugin_version', '?')} (contract v{ping.get('contract_version')}), "
        f"WordPress {ping.get('wordpress_version', '?')}, timezone {ping.get('timezone', '?')}; "
        f"serves {served}." + _push_note(ctx, ping)
    )


def _push_note(ctx: CheckContext, ping: dict) -> str:
    """Whether the site can reach the platform (a round trip the plugin performs). Never a
    failure: without push, edits still arrive with the scheduled syncs."""
    if ctx.push_round_trip is None:
        return ""
    if not ping.get("push"):
        return (
            " This plugin version cannot notify the platform of changes: edits arrive with "
            "the scheduled syncs. Update the Association App plugin for changes in seconds."
        )
    result = ctx.push_round_trip()
    if not result.get("subscribed"):
        return (
            f" Push is not set up ({result.get('error')}): edits arrive with the scheduled syncs."
        )
    if result.get("reachable"):
        return " The site reached the platform: its edits arrive within seconds (push)."
    return (
        " The site could not notify the platform of changes "
        f"({result.get('error') or 'no answer'}): edits arrive with the scheduled syncs. "
        "Check that the site can open connections to the platform's address (PLATFORM_URL)."
    )


# --- 5. Data available ---------------------------------------------------------------------


def first_page(client, entity_type: str):
    """The first list page with one record (its `total` counts them all), or None."""
    pages = client.iter_pages(entity_type, per_page=1)
    try:
        return next(pages, None)
    finally:
        pages.close()


@check("data", "Data available", requires=("api_key",))
def check_data(ctx: CheckContext) -> str:
    enabled = list(ctx.enabled_entity_types)
    if not enabled:
        raise CheckFailed(
            "No entity types are enabled on this connector: enable at least one in its settings."
        )
    ping = ctx.facts.get("ping")
    served = set(ping["entity_types"]) if ping is not None else set(enabled)
    not_served = [t for t in enabled if t not in served]
    to_read = [t for t in enabled if t in served]
    totals: dict[str, int] = {}
    errors: list[str] = []
    without_change_log = False
    for position, entity_type in enumerate(to_read):
        try:
            page = first_page(ctx.client, entity_type)
        except RequestTimedOut as exc:
            untried = ", ".join(to_read[position + 1 :])
            errors.append(f"{entity_type}: {exc.message}")
            if untried:
                errors.append(f"not tried after the timeout: {untried}")
            break
        except WordPressError as exc:
            errors.append(f"{entity_type}: {exc.message}")
            continue
        totals[entity_type] = (
            max(page.total, len(page.items) + len(page.skipped)) if page is not None else 0
        )
        # Contract 1.2 (§5.7): a plugin without a change log answers no change_seq.
        without_change_log |= page is not None and getattr(page, "change_seq", 0) is None
    ctx.facts["totals"] = totals

    summary = ", ".join(f"{t} {n}" for t, n in totals.items())
    notes = []
    if not_served:
        notes.append(
            f"Enabled on the connector but not served by the site (switched off in the "
            f"plugin's settings): {', '.join(not_served)}."
        )
    if errors:
        notes.append("Could not read " + "; ".join(errors) + ".")
    if without_change_log:
        notes.append(
            "The plugin predates change capture (sync API contract 1.2): changes WordPress makes "
            "without a new modification date (the cron publishing a scheduled post, meta or "
            "term edits outside a post save) reach the platform only with a full sync. Update "
            "the Association App plugin to 1.2 or later."
        )
    tail = (" " + " ".join(notes)) if notes else ""

    if any(totals.values()):
        return f"Records available: {summary}.{tail}"
    if not to_read:
        raise CheckFailed(
            "The site serves none of the entity types enabled on this connector "
            f"({', '.join(enabled)}): enable them in {PLUGIN_SETTINGS} (“Entity types served”), "
            "or enable the types the site serves on the connector."
        )
    if totals:
        raise CheckFailed(
            f"No enabled entity type returned any record ({summary}): the site has no content "
            f"of these types yet, or the plugin does not serve it.{tail}"
        )
    raise CheckFailed(("No entity type could be read." + tail).strip())


# --- Running -------------------------------------------------------------------------------


def _root_failure(key: str, results: dict[str, StepResult]) -> StepResult | None:
    """The first failed step that `key` depends on, directly or through a skipped step."""
    result = results.get(key)
    if result is None:
        return None
    if result.status == FAIL:
        return result
    if result.status == SKIPPED:
        check_ = next(c for c in CHECKS if c.key == key)
        for requirement in check_.requires:
            root = _root_failure(requirement, results)
            if root is not None:
                return root
    return None


def _skip_reason(check_: Check, results: dict[str, StepResult]) -> str | None:
    for requirement in check_.requires:
        if results[requirement].status == PASS:
            continue
        root = _root_failure(requirement, results) or results[requirement]
        if root.key == requirement:
            return f"Skipped: “{root.name}” failed, so this step cannot run."
        return (
            f"Skipped: “{root.name}” failed, so “{results[requirement].name}” and this "
            "step cannot run."
        )
    return None


def run_checks(
    ctx: CheckContext,
    *,
    checks: list[Check] | None = None,
    on_step: Callable[[list[StepResult]], None] | None = None,
    deadline: float | None = None,
    abort_on: tuple[type[BaseException], ...] = (),
) -> list[StepResult]:
    """Run the checks in order and return one StepResult per check.

    `on_step` gets the results so far after every step (the caller saves progress).
    `deadline` (time.monotonic()) is the time budget: checks not started by then are skipped.
    `abort_on` are exceptions that stop the whole run (Celery's soft time limit): the step
    running when it arrives fails, the rest are skipped.
    """
    checks = CHECKS if checks is None else checks
    by_key: dict[str, StepResult] = {}
    ordered: list[StepResult] = []
    stopped_reason: str | None = None

    for check_ in checks:
        if stopped_reason is not None:
            result = StepResult(check_.key, check_.name, SKIPPED, stopped_reason)
        elif deadline is not None and time.monotonic() > deadline:
            stopped_reason = "Skipped: the test ran out of time before this step."
            result = StepResult(check_.key, check_.name, SKIPPED, stopped_reason)
        elif (reason := _skip_reason(check_, by_key)) is not None:
            result = StepResult(check_.key, check_.name, SKIPPED, reason)
        else:
            result, aborted = _run_one(check_, ctx, abort_on)
            if aborted:
                stopped_reason = "Skipped: the test was stopped by its time limit."
        by_key[check_.key] = result
        ordered.append(result)
        if on_step is not None:
            on_step(list(ordered))
    return ordered


def _run_one(check_: Check, ctx: CheckContext, abort_on) -> tuple[StepResult, bool]:
    started = time.monotonic()
    aborted = False
    try:
        status, message = PASS, check_.run(ctx)
    except CheckFailed as exc:
        status, message = FAIL, exc.message
    except WordPressError as exc:
        status, message = FAIL, exc.message
    except abort_on:
        aborted = True
        status, message = FAIL, "Stopped: the test reached its time limit during this step."
    except Exception as exc:
        logger.exception("Connection check %s crashed", check_.key)
        status, message = FAIL, f"Unexpected error during this step ({type(exc).__name__}): {exc}"
    duration_ms = round((time.monotonic() - started) * 1000)
    return StepResult(check_.key, check_.name, status, message, duration_ms), aborted

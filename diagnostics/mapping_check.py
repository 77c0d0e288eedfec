"""Mapping diagnostics: dry-run the sync's own field mapping on real WordPress records.

For each entity type, fetch one sample record (the first of the list, or the record whose
WordPress ID the admin typed), run it through `mapping_for` + `map_record` — the very code the
sync engine uses — and report every platform field as PRESENT, MISSING, DEFAULT_USED or
INVALID beside its source path and raw value. Nothing is written anywhere.

It runs synchronously in the request: one GET per entity type, with the diagnostics'
short timeouts and no retries, and it stops at the first error that concerns the whole site
(unreachable, key refused...) instead of waiting for it once per type.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from connectors.wordpress import contract
from connectors.wordpress.errors import (
    PLUGIN_SETTINGS,
    AuthenticationFailed,
    BlockedAddress,
    PluginMissing,
    RecordNotFound,
    RequestTimedOut,
    SiteUnreachable,
    SyncDisabled,
    TLSFailure,
    WordPressError,
)
from records.mapping import FieldStatus, map_record, mapping_for

DISPLAY_CHARS = 160
# Errors that are about the site, not about one entity type: asking the next type is pointless.
SITE_ERRORS = (
    SiteUnreachable,
    TLSFailure,
    RequestTimedOut,
    BlockedAddress,
    AuthenticationFailed,
    PluginMissing,
    SyncDisabled,
)
# Time budget for the whole page: beyond it the remaining types are reported as not checked.
TIME_BUDGET_SECONDS = 25.0

STATUS_ORDER = (
    FieldStatus.PRESENT,
    FieldStatus.DEFAULT_USED,
    FieldStatus.MISSING,
    FieldStatus.INVALID,
)


def _gmt(value: datetime) -> str:
    if value.tzinfo is None:
        return value.isoformat(sep=" ")
    return contract.format_gmt(value).replace("T", " ") + " UTC"


def display_value(value: Any, limit: int = DISPLAY_CHARS) -> str:
    """A raw or mapped value as short text (the template escapes it)."""
    if value is None:
        text = "null"
    elif value == "":
        text = "(empty string)"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, datetime):
        text = _gmt(value)
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class FieldRow:
    name: str
    source: str
    status: str
    raw: str
    value: str
    error: str


@dataclass
class EntityMappingReport:
    entity_type: str
    requested_id: int | None = None
    external_id: str = ""
    modified_gmt: str = ""
    rows: list[FieldRow] = field(default_factory=list)
    record_errors: list[str] = field(default_factory=list)
    error: str = ""
    note: str = ""

    @property
    def counts(self) -> dict[str, int]:
        counts = {str(status): 0 for status in STATUS_ORDER}
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.error and self.counts[FieldStatus.INVALID] == 0


@dataclass
class MappingDiagnostics:
    reports: list[EntityMappingReport]
    site_error: str = ""


def _status_value(status) -> str:
    return str(getattr(status, "value", status))


def _in_record(raw: Any, path: str) -> bool:
    """Whether the dotted source path exists in the record (to tell "absent" from null)."""
    node = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def dry_run(entity_type: str, raw: Any, overrides: dict | None) -> EntityMappingReport:
    external_id = str(raw.get("id", "")) if isinstance(raw, dict) else ""
    try:
        specs = mapping_for(entity_type, overrides or None)
    except ValueError as exc:
        return EntityMappingReport(
            entity_type,
            external_id=external_id,
            error=f"The connector's field mapping overrides for {entity_type} are invalid: {exc}",
        )
    mapped = map_record(entity_type, raw, specs)
    report = EntityMappingReport(
        entity_type=entity_type,
        external_id=str(mapped.external_id or external_id),
        modified_gmt=_gmt(mapped.modified_gmt) if mapped.modified_gmt else "",
    )
    for result in mapped.fields:
        report.rows.append(
            FieldRow(
                name=result.name,
                source=str(result.source),
                status=_status_value(result.status),
                raw=(
                    display_value(result.raw)
                    if _in_record(raw, result.source)
                    else "(not in the record)"
                ),
                value=display_value(result.value),
                error=result.error or "",
            )
        )
    report.record_errors = [str(error) for error in (mapped.errors or [])]
    return report


def check_mapping(
    client,
    entity_types: list[str],
    overrides: dict | None,
    *,
    record_id: int | None = None,
    time_budget: float = TIME_BUDGET_SECONDS,
) -> MappingDiagnostics:
    """Fetch one record per entity type and dry-run its mapping; never writes anything."""
    overrides = overrides or {}
    deadline = time.monotonic() + time_budget
    reports: list[EntityMappingReport] = []
    site_error = ""
    for entity_type in entity_types:
        if site_error:
            reports.append(
                EntityMappingReport(
                    entity_type, record_id, error="Not checked: see the error above."
                )
            )
            continue
        if time.monotonic() > deadline:
            reports.append(
                EntityMappingReport(
                    entity_type,
                    record_id,
                    error="Not checked: the page's time budget ran out. Check this type alone.",
                )
            )
            continue
        try:
            raw, note = _fetch_sample(client, entity_type, record_id)
        except RecordNotFound:
            reports.append(
                EntityMappingReport(
                    entity_type,
                    record_id,
                    error=(
                        f"WordPress serves no {entity_type} with ID {record_id}: the ID is wrong, "
                        "the post is trashed or an auto-draft, or it belongs to another type."
                    ),
                )
            )
            continue
        except PluginMissing as exc:
            if exc.code == contract.ERROR_NO_ROUTE:
                # The plugin answered: only this type's route is missing (§4 entity_types).
                reports.append(
                    EntityMappingReport(
                        entity_type,
                        record_id,
                        error=(
                            f"The site does not serve {entity_type} records: the type is "
                            f"switched off in {PLUGIN_SETTINGS} (“Entity types served”), or "
                            "the plugin is outdated."
                        ),
                    )
                )
                continue
            site_error = exc.message
            reports.append(EntityMappingReport(entity_type, record_id, error=exc.message))
            continue
        except SITE_ERRORS as exc:
            site_error = exc.message
            reports.append(EntityMappingReport(entity_type, record_id, error=exc.message))
            continue
        except WordPressError as exc:
            reports.append(EntityMappingReport(entity_type, record_id, error=exc.message))
            continue
        if raw is None:
            reports.append(EntityMappingReport(entity_type, record_id, note=note))
            continue
        report = dry_run(entity_type, raw, overrides.get(entity_type))
        report.requested_id = record_id
        report.note = note
        reports.append(report)
    return MappingDiagnostics(reports=reports, site_error=site_error)


def _fetch_sample(client, entity_type: str, record_id: int | None) -> tuple[dict | None, str]:
    if record_id is not None:
        return client.get_record(entity_type, record_id), f"Record {record_id}, as requested."
    page = next(iter(client.iter_pages(entity_type, per_page=1)), None)
    if page is None or not page.items:
        return None, f"The site has no {entity_type} records yet: there is nothing to check."
    return page.items[0], (
        f"Sample: the least recently modified of {page.total} {entity_type} record"
        f"{'s' if page.total != 1 else ''}."
    )

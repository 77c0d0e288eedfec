"""A record's trace for its page: every sync log row of the record across jobs, and its
current values on the platform beside what WordPress serves now (fetched by id, §5.7)."""

from __future__ import annotations

import nh3

from connectors import crypto
from connectors.wordpress.errors import WordPressError
from connectors.wordpress_client import client_for
from records.mapping import map_record, mapping_for
from syncjobs.models import SyncJob, SyncLogEntry

# Rows shown; a record synced every 15 minutes for a month has about 3,000 (mostly SKIP).
TRACE_ROWS = 200


def log_rows(record) -> list[SyncLogEntry]:
    """The record's log rows, newest first. Through the connector's jobs, so each job is one
    probe of the log's (job, external_id) index, never a scan of the connector's whole log."""
    if not record.connector_id:
        return []
    jobs = SyncJob.objects.filter(connector_id=record.connector_id).values("pk")
    return list(
        SyncLogEntry.objects.filter(
            job__in=jobs, entity_type=record.entity_type, external_id=record.external_id
        )
        .select_related("job__connector__organisation")
        .order_by("-id")[:TRACE_ROWS]
    )


def side_by_side(connector, record, *, source=None) -> tuple[list[dict], str]:
    """[{"name", "platform", "wordpress", "differs"}] for each mapped field, and an error in
    words when WordPress could not be asked (the rows then hold the platform side only)."""
    specs = mapping_for(
        record.entity_type,
        (connector.field_mapping_overrides or {}).get(record.entity_type),
        protected_content=connector.store_protected_content,
    )
    platform = {spec.name: getattr(record, spec.name, None) for spec in specs}
    wordpress, error = None, ""
    if not record.external_id.isdigit():
        error = "This record has no WordPress id to fetch."
    else:
        wordpress, error = _fetch(connector, record, specs, source)
    rows = []
    for spec in specs:
        theirs = wordpress.get(spec.name) if wordpress is not None else None
        ours = platform[spec.name]
        if spec.type == "html":
            # Shown as text, sanitised first as the Content card does: markup an attacker
            # put in WordPress is not even echoed escaped (tests/reliability XSS checks).
            ours, theirs = _clean(ours), _clean(theirs)
        rows.append(
            {
                "name": spec.name,
                "platform": ours,
                "wordpress": theirs,
                "differs": wordpress is not None and _comparable(ours) != _comparable(theirs),
            }
        )
    return rows, error


def _fetch(connector, record, specs, source):
    try:
        client = source or client_for(connector, max_retries=0, timeout=10)
    except (WordPressError, crypto.SecretUnreadable) as exc:
        return None, f"WordPress could not be asked: {exc}"
    try:
        page = client.fetch_changed(record.entity_type, [int(record.external_id)])
    except WordPressError as exc:
        return None, f"WordPress could not be asked: {exc}"
    finally:
        if source is None:
            client.close()
    items = [i for i in page.items or [] if str(i.get("id")) == record.external_id]
    if not items:
        return None, "WordPress does not serve this record any more (deleted or unpublished)."
    mapped = map_record(record.entity_type, items[0], specs)
    if not mapped.ok:
        return None, "WordPress serves this record, but it cannot be mapped: " + "; ".join(
            mapped.errors
        )
    return mapped.values, ""


def _clean(value):
    return nh3.clean(value) if isinstance(value, str) else value


def _comparable(value):
    """Values as the mapping stores them: dates and decimals compare by their text."""
    if value is None or value == "":
        return ""
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    return str(value) if not isinstance(value, bool | int) else value

"""The conflict inbox: records whose last sync decision was CONFLICT (the platform's edit
kept over a newer WordPress one, see SyncEngine._decide) and that nobody has answered yet,
and the three answers: keep the platform version, take WordPress's, or dismiss.

A conflict is a CONFLICT log row that is still its record's newest log row (a later sync
that wrote or pushed the record settled it) and has no ConflictResolution. The row itself is
the conflict, so nothing new is written while syncing; the resolution's unique log_entry
makes a second answer to the same conflict fail, whoever clicks first wins.

Taking WordPress's version and, two-way, keeping the platform's are carried out by a normal
one-job sync of those records (the scope the "Sync one record" tool uses), so each gets its
log row and the engine's usual rules: the platform edit is dropped first (WordPress's version
is then an ordinary UPDATE), or WordPress's refusal is forgotten (the edit is then pushed
through the engine's push path, with its 409 check). Every answer is audit-logged.

Keeping the platform version (import only) and dismissing write nothing, so the next full
sync would meet the same WordPress version and decide CONFLICT again. The answer therefore
records the WordPress version it was about (fetched by id when the admin answers: the version
the inbox's diff showed), and the engine asks conflict_memory.remembered_answer() before it raises a
conflict: the same version is a SKIP that names the answer; a later WordPress edit is a new
conflict.
"""

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from audit.models import AuditEvent
from audit.services import record
from connectors import crypto
from connectors.models import Connector
from connectors.wordpress import contract
from connectors.wordpress.errors import WordPressError
from records.models import RECORD_MODELS
from syncjobs import services
from syncjobs.models import ConflictResolution, SyncJob, SyncLogEntry

Action = ConflictResolution.Action


def unresolved(connector):
    """The connector's open conflicts (CONFLICT log rows). Through the connector's jobs, as
    records.trace does, so the log's (job, status) and (job, external_id) indexes serve both
    lookups instead of a walk of the connector's whole log (the Overview counts them)."""
    jobs = SyncJob.objects.filter(connector_id=connector.pk).values("pk")
    later = SyncLogEntry.objects.filter(
        job__in=jobs,
        job_id__gte=OuterRef("job_id"),
        external_id=OuterRef("external_id"),
        entity_type=OuterRef("entity_type"),
        id__gt=OuterRef("id"),
    )
    return SyncLogEntry.objects.filter(
        job__in=jobs, status=SyncLogEntry.Status.CONFLICT, resolution__isnull=True
    ).exclude(Exists(later))


def resolve(connector, log_ids, action: str, *, user=None):
    """Answer these conflicts with `action`. Returns (resolutions, job or None, refusals and
    warnings in words). Raises SyncRefused, writing nothing, when the job cannot start (one in
    flight) or the answer makes no sense for the connector."""
    two_way = connector.sync_direction == Connector.Direction.TWO_WAY
    if (
        action == Action.KEEP_PLATFORM
        and two_way
        and connector.conflict_policy == Connector.ConflictPolicy.WORDPRESS_WINS
    ):
        # The engine would write WordPress's version over the edit it is asked to push.
        raise services.SyncRefused(
            "This connector's conflict policy is WordPress wins: a sync would overwrite the "
            "platform version. Set it to Platform wins to push it, or dismiss the conflict."
        )
    needs_job = action == Action.TAKE_WORDPRESS or (action == Action.KEEP_PLATFORM and two_way)
    versions, unasked = {}, ""
    if not needs_job:
        # Asked before the transaction: no network wait while it holds its locks.
        versions, unasked = wordpress_versions(connector, log_ids)
    done, refused = [], []
    with transaction.atomic():
        open_ids = set(unresolved(connector).filter(pk__in=log_ids).values_list("pk", flat=True))
        for row in SyncLogEntry.objects.filter(connector=connector, pk__in=log_ids).order_by("id"):
            label = f"{row.entity_type} {row.external_id}"
            wordpress_hash, wordpress_modified_at = versions.get(
                (row.entity_type, row.external_id), ("", None)
            )
            try:
                with transaction.atomic():
                    if row.pk not in open_ids:
                        raise IntegrityError
                    done.append(
                        ConflictResolution.objects.create(
                            connector=connector,
                            log_entry=row,
                            entity_type=row.entity_type,
                            external_id=row.external_id,
                            action=action,
                            resolved_by=user if getattr(user, "is_authenticated", False) else None,
                            wordpress_hash=wordpress_hash,
                            wordpress_modified_at=wordpress_modified_at,
                        )
                    )
            except IntegrityError:
                refused.append(_why_closed(row, label))
        if not done:
            return [], None, refused
        if unasked:
            refused.append(
                f"{unasked} The answer is recorded, but without the WordPress version it was "
                "about: the next full sync raises the conflict again."
            )
        job = None
        if needs_job:
            records: dict[str, list[str]] = {}
            for answer in done:
                model = RECORD_MODELS[answer.entity_type]
                mine = model.objects.filter(pk=answer.log_entry.internal_id)
                if action == Action.TAKE_WORDPRESS:
                    mine.update(platform_modified_at=None, push_refused_at=None)
                else:
                    mine.update(push_refused_at=None)
                records.setdefault(answer.entity_type, []).append(answer.external_id)
            # SyncRefused (a job in flight) rolls all of it back: nothing is half-answered.
            job = services.start_sync(
                connector, SyncJob.Kind.FULL, user=user, scope={"records": records}
            )
            ConflictResolution.objects.filter(pk__in=[a.pk for a in done]).update(job=job)
        record(
            connector,
            AuditEvent.Action.UPDATED,
            actor=user,
            changes={
                f"Conflict on {a.entity_type} {a.external_id}": {
                    "before": "unresolved",
                    "after": a.get_action_display() + (f" (job #{job.pk})" if job else ""),
                }
                for a in done
            },
        )
    return done, job, refused


def _why_closed(row, label: str) -> str:
    answer = ConflictResolution.objects.filter(log_entry=row).select_related("resolved_by")
    answer = answer.first()
    if answer is not None:
        who = answer.resolved_by.username if answer.resolved_by else "someone"
        what = answer.get_action_display().lower()
        return f"The conflict on {label} was already resolved by {who} ({what})."
    return f"The conflict on {label} is no longer open: a later sync settled it."


def wordpress_versions(connector, log_ids) -> tuple[dict, str]:
    """WordPress's current version of each of these conflicts' records, {(type, id): (content
    hash, modified_gmt)}, mapped and hashed as the engine does (the runner's mapping), and
    an error in words when WordPress could not be asked. A record WordPress no longer
    serves, or serves unmappable, has no version (the next sync archives or fails it)."""
    from connectors.wordpress_client import client_for
    from records.mapping import content_hash, map_record, mapping_for

    wanted: dict[str, list[str]] = {}
    rows = SyncLogEntry.objects.filter(
        connector=connector, pk__in=log_ids, status=SyncLogEntry.Status.CONFLICT
    ).values_list("entity_type", "external_id")
    for entity_type, external_id in rows:
        if external_id.isdigit() and entity_type in RECORD_MODELS:
            wanted.setdefault(entity_type, [])
            if external_id not in wanted[entity_type]:
                wanted[entity_type].append(external_id)
    if not wanted:
        return {}, ""
    overrides = connector.field_mapping_overrides or {}
    versions = {}
    try:
        client = client_for(connector, max_retries=0, timeout=10)
    except (WordPressError, crypto.SecretUnreadable) as exc:
        return {}, f"WordPress could not be asked: {exc}"
    try:
        for entity_type, ids in wanted.items():
            specs = mapping_for(
                entity_type,
                overrides.get(entity_type),
                protected_content=connector.store_protected_content,
            )
            for start in range(0, len(ids), contract.MAX_INCLUDE_IDS):
                chunk = ids[start : start + contract.MAX_INCLUDE_IDS]
                page = client.fetch_changed(entity_type, [int(i) for i in chunk])
                for item in page.items or []:
                    mapped = map_record(entity_type, item, specs, detail=False)
                    if mapped.ok and mapped.external_id in chunk:
                        versions[(entity_type, mapped.external_id)] = (
                            content_hash(mapped.values),
                            mapped.modified_gmt,
                        )
    except WordPressError as exc:
        return {}, f"WordPress could not be asked: {exc}"
    finally:
        client.close()
    return versions, ""

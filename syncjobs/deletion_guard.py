"""The deletion guard's review: the archives a full walk held back (HeldDeletion, written by
the store when the engine's guard trips, see SyncEngine._guarded), approved or discarded once
by an administrator, each decision audit-logged.

Approving archives the held records WordPress still does not serve: a record a later sync
logged came back, and stays live. Each archive gets its log row in the job that held it, so
the record's page tells the whole story.
"""

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record
from records.models import RECORD_MODELS
from syncjobs.models import HeldDeletion, SyncLogEntry
from syncjobs.services import SyncRefused


def pending(connector):
    return HeldDeletion.objects.filter(connector=connector, decided_at__isnull=True)


def decide(connector, held_id, *, approve: bool, user=None) -> HeldDeletion:
    """Approve (archive) or discard one held batch; SyncRefused when it was decided already
    (two admins, two tabs: the conditional UPDATE lets exactly one win)."""
    with transaction.atomic():
        held = HeldDeletion.objects.filter(connector=connector, pk=held_id).first()
        if held is None:
            raise SyncRefused("No such held deletion for this connector.")
        decision = HeldDeletion.Decision.APPROVED if approve else HeldDeletion.Decision.DISCARDED
        won = HeldDeletion.objects.filter(pk=held.pk, decided_at__isnull=True).update(
            decision=decision, decided_at=timezone.now(), decided_by=user
        )
        if not won:
            held.refresh_from_db()
            who = held.decided_by.username if held.decided_by else "someone"
            raise SyncRefused(
                f"These {held.count} {held.entity_type} deletions were already decided by "
                f"{who} ({held.get_decision_display().lower()})."
            )
        archived = _archive(held, user) if approve else 0
        HeldDeletion.objects.filter(pk=held.pk).update(archived=archived)
        key = f"Held {held.entity_type} deletions of job #{held.job_id}"
        after = f"approved: {archived} archived" if approve else "discarded: records kept"
        record(
            connector,
            AuditEvent.Action.UPDATED,
            actor=user,
            changes={key: {"before": f"{held.count} held for review", "after": after}},
        )
    held.refresh_from_db()
    return held


def _archive(held: HeldDeletion, user) -> int:
    model = RECORD_MODELS[held.entity_type]
    # Served again since (a later job logged them): not deleted after all.
    back = set(
        SyncLogEntry.objects.filter(
            job__connector_id=held.connector_id,
            job_id__gt=held.job_id,
            entity_type=held.entity_type,
            external_id__in=held.external_ids,
        ).values_list("external_id", flat=True)
    )
    doomed = list(
        model.objects.filter(
            connector_id=held.connector_id,
            external_id__in=[i for i in held.external_ids if i not in back],
            archived_at__isnull=True,
        ).values_list("pk", "external_id")
    )
    model.objects.filter(pk__in=[pk for pk, _ in doomed]).update(archived_at=timezone.now())
    who = (user.get_full_name() or user.username) if user else "an administrator"
    SyncLogEntry.objects.bulk_create(
        SyncLogEntry(
            job_id=held.job_id,
            connector_id=held.connector_id,
            entity_type=held.entity_type,
            external_id=external_id,
            internal_id=pk,
            operation=SyncLogEntry.Operation.ARCHIVE,
            status=SyncLogEntry.Status.SUCCESS,
            error=f"Not served by WordPress any more; held by the deletion guard, archived "
            f"when {who} approved.",
        )
        for pk, external_id in doomed
    )
    return len(doomed)

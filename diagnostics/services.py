"""What the diagnostics views call: request a connection test (a PENDING ConnectionTest whose
task is enqueued after commit; diagnostics.runner runs it in the worker), read the latest one,
and dry-run the mapping. Nothing here writes a platform record or a sync log row.
"""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from connectors.wordpress.errors import WordPressError
from diagnostics.mapping_check import check_mapping
from diagnostics.models import ConnectionTest
from diagnostics.runner import DiagnosticsUnavailable, client_with_key
from diagnostics.tasks import run_connection_test_task

logger = logging.getLogger(__name__)


def latest_test(connector) -> ConnectionTest | None:
    return ConnectionTest.objects.filter(connector=connector).select_related("requested_by").first()


def expire_stale_tests(connector) -> int:
    """Close tests no worker will finish (none running, or it died), so a new one can start."""
    now = timezone.now()
    return ConnectionTest.objects.filter(
        connector=connector,
        status__in=ConnectionTest.ACTIVE_STATUSES,
        created_at__lt=now - ConnectionTest.STALE_AFTER,
    ).update(
        status=ConnectionTest.Status.FAILED,
        finished_at=now,
        error=(
            f"No worker finished this test within {int(ConnectionTest.STALE_AFTER.total_seconds())}"
            " s: check that the Celery worker is running, then test again."
        ),
    )


def request_connection_test(connector, *, user=None) -> ConnectionTest:
    """Create a PENDING test and enqueue it after commit; if one is already in flight for the
    connector, return that one (the partial unique index decides, so double clicks are safe)."""
    expire_stale_tests(connector)
    try:
        with transaction.atomic():
            test = ConnectionTest.objects.create(
                connector=connector,
                requested_by=user if user is not None and user.is_authenticated else None,
            )
            # robust: with the broker down the page shows the test waiting, and
            # expire_stale_tests() closes it, instead of an error page.
            transaction.on_commit(lambda: run_connection_test_task.delay(test.pk), robust=True)
    except IntegrityError:
        # The one in flight (or, if it finished in between, the latest result).
        return ConnectionTest.objects.filter(
            connector=connector, status__in=ConnectionTest.ACTIVE_STATUSES
        ).first() or latest_test(connector)
    return test


def run_mapping_diagnostics(connector, entity_types, *, record_id=None):
    """Dry-run the sync's mapping on one record per entity type (synchronous, read-only)."""
    try:
        client = client_with_key(connector)
    except WordPressError as exc:
        raise DiagnosticsUnavailable(exc.message) from None
    with client:
        try:
            return check_mapping(
                client, entity_types, connector.field_mapping_overrides or {}, record_id=record_id
            )
        except WordPressError as exc:
            raise DiagnosticsUnavailable(exc.message) from None
        except Exception as exc:
            # Read-only, so nothing is half done: say so instead of an error page.
            logger.exception("mapping diagnostics of connector %s crashed", connector.pk)
            raise DiagnosticsUnavailable(
                f"The mapping diagnostics stopped on an unexpected error ({type(exc).__name__}). "
                "Nothing was written. Try again, or contact support if it keeps happening."
            ) from None

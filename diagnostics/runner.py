"""A connection test in the worker: claim the PENDING row, run the five checks
(diagnostics/checks.py) saving the steps after each one so the page shows progress, then
finish the row and record the audit event; and the WordPress client the diagnostics use.
"""

import logging
import time

from django.conf import settings
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record
from connectors.crypto import SecretUnreadable
from connectors.wordpress.client import WordPressClient
from connectors.wordpress.errors import PLUGIN_SETTINGS, WordPressError
from connectors.wordpress_client import client_for
from diagnostics import checks
from diagnostics.models import ConnectionTest
from push import subscriptions

logger = logging.getLogger(__name__)

# The diagnostics want a quick, honest answer, not the sync's patience: no retries, and
# timeouts short enough that all five steps fit in the task's time limit.
CLIENT_OPTIONS = {"timeout": 10.0, "connect_timeout": 5.0, "max_retries": 0}


def build_context(connector) -> checks.CheckContext:
    context = checks.CheckContext(
        client=None,
        site_url=connector.site_url,
        enabled_entity_types=connector.enabled_entity_types(),
    )
    try:
        try:
            context.client = client_with_key(connector)
        except DiagnosticsUnavailable as exc:
            # No usable key: the key-less probes (steps 1-3) still tell the admin something.
            context.key_problem = str(exc)
            context.client = WordPressClient(
                connector.site_url,
                "",
                allow_private=settings.WORDPRESS_ALLOW_PRIVATE_HOSTS,
                **CLIENT_OPTIONS,
            )
    except WordPressError as exc:
        # The client refuses the site URL itself; step 1 reports it.
        context.facts["client_error"] = exc
    if context.client is not None and not context.key_problem:
        context.push_round_trip = lambda: subscriptions.subscribe(
            connector, context.client, test=True
        )
    return context


def run_connection_test(test_id: int, *, abort_on: tuple = ()) -> ConnectionTest | None:
    """Claim a PENDING test, run the checks and finish it. Returns None when the test was not
    PENDING (already run by a redelivered message, or expired as stale)."""
    claimed = ConnectionTest.objects.filter(
        pk=test_id, status=ConnectionTest.Status.PENDING
    ).update(status=ConnectionTest.Status.RUNNING, started_at=timezone.now())
    if not claimed:
        return None
    test = ConnectionTest.objects.select_related("connector__organisation", "requested_by").get(
        pk=test_id
    )

    def save_progress(results):
        ConnectionTest.objects.filter(pk=test_id).update(steps=[r.as_dict() for r in results])

    error = ""
    context = None
    try:
        context = build_context(test.connector)
        results = checks.run_checks(
            context,
            on_step=save_progress,
            deadline=time.monotonic() + ConnectionTest.SOFT_TIME_LIMIT,
            abort_on=abort_on,
        )
        steps = [r.as_dict() for r in results]
    except Exception as exc:
        # The checks catch their own failures; this is the machinery failing (database,
        # settings). Finish the row anyway so the page stops waiting and says why.
        logger.exception("Connection test %s crashed", test_id)
        error = f"The test could not run ({type(exc).__name__}): {exc}"
        steps = ConnectionTest.objects.values_list("steps", flat=True).get(pk=test_id)
    finally:
        if context is not None and context.client is not None:
            context.client.close()

    passed = not error and bool(steps) and all(s["status"] == checks.PASS for s in steps)
    test.status = ConnectionTest.Status.PASSED if passed else ConnectionTest.Status.FAILED
    test.steps = steps
    test.error = error
    test.finished_at = timezone.now()
    test.save(update_fields=["status", "steps", "error", "finished_at"])
    record(
        test.connector,
        AuditEvent.Action.CONNECTION_TESTED,
        actor=test.requested_by,
        changes=audit_summary(test),
    )
    return test


def audit_summary(test: ConnectionTest) -> dict:
    summary = {"test": test.pk, "outcome": "passed" if test.passed else "failed"}
    failed = test.failed_step
    if failed:
        summary["failed_step"] = failed["name"]
        summary["message"] = failed["message"]
    elif test.error:
        summary["message"] = test.error
    return summary


class DiagnosticsUnavailable(Exception):
    """The diagnostics cannot talk to WordPress at all; the message says why and what to do."""


def client_with_key(connector):
    """A client for the key-authenticated diagnostics, or DiagnosticsUnavailable."""
    if not connector.has_api_key:
        raise DiagnosticsUnavailable(
            f"No API key is saved for this connector. Generate one in {PLUGIN_SETTINGS}, "
            "then paste it in this connector's Settings → Authentication."
        )
    try:
        connector.api_key  # noqa: B018 - decrypting is the check
    except SecretUnreadable as exc:
        raise DiagnosticsUnavailable(str(exc)) from None
    return client_for(connector, **CLIENT_OPTIONS)

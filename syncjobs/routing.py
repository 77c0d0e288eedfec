"""Which Celery queue a task goes to (fairness: issue 17).

Initial imports, full syncs and reconciliations walk every record of a site and can run for
many minutes; incremental syncs take seconds. On one queue, a handful of large imports would
hold every worker while a fleet's incrementals wait. So the long walks go to the `bulk`
queue and everything else (incrementals, pushed syncs, the scheduler's ticks) stays on the
default queue, and production runs a worker per queue (docker-compose.yml). A worker started
without -Q consumes both (CELERY_TASK_QUEUES), as the demo's and the tests' do.

Senders pass the job's kind in the task's `kind` argument (services.enqueue_job): routing
then costs no query, which the scheduler pays per dispatched job otherwise. A message
without it (one sent by an older release) is routed by the kind in the job's row.
"""

from django.conf import settings

BULK_KINDS = ("INITIAL", "FULL", "RECONCILE")


def route_task(name, args, kwargs, options, task=None, **kw):
    if name != "syncjobs.tasks.run_sync_job" or not args:
        return None  # the default queue
    kind = (kwargs or {}).get("kind")
    if kind is None:  # a message sent before kinds rode along
        # Deferred so that importing the router never needs Django's app registry: Celery
        # imports it by name (settings.CELERY_TASK_ROUTES) in whatever process sends a task.
        from syncjobs.models import SyncJob

        kind = SyncJob.objects.filter(pk=args[0]).values_list("kind", flat=True).first()
    if kind in BULK_KINDS:
        return {"queue": settings.SYNC_BULK_QUEUE}
    return None

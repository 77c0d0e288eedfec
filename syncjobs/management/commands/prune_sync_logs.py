"""`python manage.py prune_sync_logs`: remove per-record log rows past retention now (the beat
task does the same every hour; see syncjobs/retention.py)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from syncjobs.periodic import PRUNE_YIELD_RATIO
from syncjobs.retention import prune


class Command(BaseCommand):
    help = (
        "Remove sync log rows older than SYNC_LOG_RETENTION_DAYS (failed and conflict rows: "
        "twice as long). Job rows and their counters are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=None, help="override SYNC_LOG_RETENTION_DAYS"
        )
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument(
            "--yield-ratio",
            type=float,
            default=None,
            help="after each batch, sleep this many times the batch's duration, leaving the "
            "database to running syncs (default: as the hourly task; 0: flat out)",
        )

    def handle(self, *args, days, batch_size, yield_ratio, **options):
        yield_ratio = PRUNE_YIELD_RATIO if yield_ratio is None else yield_ratio
        if yield_ratio < 0:
            raise CommandError("--yield-ratio must be 0 or more.")
        days = settings.SYNC_LOG_RETENTION_DAYS if days is None else days
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if days <= 0:
            self.stdout.write("Retention is off (0 days): nothing removed.")
            return
        result = prune(days=days, batch_size=batch_size, yield_ratio=yield_ratio)
        self.stdout.write(
            f"Removed {result.rows} log rows of {result.jobs} jobs finished more than "
            f"{days} days ago (failed and conflict rows: {2 * days} days)."
        )

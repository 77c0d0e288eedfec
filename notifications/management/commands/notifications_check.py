"""`python manage.py notifications_check`: evaluate stale-data alerts now (beat runs the same
check every NOTIFICATIONS_CHECK_INTERVAL seconds); `--digest` also sends the daily digests."""

from django.core.management.base import BaseCommand

from notifications.alerts import check_stale
from notifications.delivery import resend_pending, send_digests
from syncjobs.management.commands.sync import deliver_notifications_here, worker_available


class Command(BaseCommand):
    help = "Evaluate stale-data notifications now; with --digest, send the daily digests too."

    def add_arguments(self, parser):
        parser.add_argument("--digest", action="store_true", help="send the digests now")

    def handle(self, *args, **options):
        if worker_available():
            self._check(options)
        else:
            self.stdout.write("No worker answered; notifications are sent from this process.")
            with deliver_notifications_here():
                self._check(options)

    def _check(self, options):
        stale = check_stale()
        resent = resend_pending()
        self.stdout.write(
            f"{stale} connector{'s' if stale != 1 else ''} newly stale; "
            f"{resent} pending notification{'s' if resent != 1 else ''} re-sent."
        )
        if options["digest"]:
            digests = send_digests()
            self.stdout.write(f"{digests} digest mail{'s' if digests != 1 else ''} queued.")

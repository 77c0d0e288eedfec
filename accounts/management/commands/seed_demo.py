"""`python manage.py seed_demo`: the demo's organisations, users and connectors (idempotent)."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from audit.services import record
from connectors.models import Connector
from records.models import EntityType

DEMO_PASSWORD = "demo-password-2026"


class Command(BaseCommand):
    help = "Create the demo organisations, users and connectors (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--sites",
            default="8089:demo-acme-sync-key-7f3a9c2e51,8090:demo-globex-sync-key-4b8d1e6f07",
            help="port:key of the simulated WordPress sites, Acme's first",
        )

    @transaction.atomic
    def handle(self, *args, sites, **options):
        (acme_port, acme_key), (globex_port, globex_key) = (
            site.split(":", 1) for site in sites.split(",")[:2]
        )
        acme, _ = Organisation.objects.get_or_create(
            slug="acme", defaults={"name": "Acme Association"}
        )
        globex, _ = Organisation.objects.get_or_create(
            slug="globex", defaults={"name": "Globex Guild"}
        )

        for username, first, last, org in (
            ("alice", "Alice", "Admin", acme),
            ("bob", "Bob", "Builder", globex),
        ):
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@example.org",
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            Membership.objects.get_or_create(user=user, organisation=org)
        if not User.objects.filter(username="root").exists():
            User.objects.create_superuser("root", "root@example.org", DEMO_PASSWORD)

        soon = timezone.now() + timedelta(seconds=45)
        everything = list(EntityType.values)
        # Acme splits its site over two connectors by entity type (events and conferences on a
        # daily, paused one): two connectors of one organisation importing the same type from
        # one site would fight over the same slugs, and a first click on the paused one would
        # show a wall of duplicate-slug failures.
        events = [EntityType.EVENT.value, EntityType.CONFERENCE.value]
        self._connector(
            acme,
            "Acme main site",
            f"http://127.0.0.1:{acme_port}",
            acme_key,
            [t for t in everything if t not in events],
            Connector.Frequency.EVERY_15_MINUTES,
            soon,
        )
        self._connector(
            acme,
            "Acme events (paused)",
            f"http://127.0.0.1:{acme_port}",
            acme_key,
            events,
            Connector.Frequency.DAILY,
            None,
            status=Connector.Status.PAUSED,
        )
        self._connector(
            globex,
            "Globex website",
            f"http://127.0.0.1:{globex_port}",
            globex_key,
            everything,
            Connector.Frequency.HOURLY,
            soon,
        )
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _connector(self, org, name, url, key, types, frequency, next_sync_at, status=None):
        if Connector.objects.filter(organisation=org, name=name).exists():
            return
        connector = Connector(
            organisation=org,
            name=name,
            site_url=url,
            entity_types=types,
            frequency=frequency,
            next_sync_at=next_sync_at,
            status=status or Connector.Status.ACTIVE,
        )
        connector.api_key = key
        connector.save()
        record(connector, AuditEvent.Action.CREATED, changes={"source": "demo seed"})

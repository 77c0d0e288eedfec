"""The `wpsim` command: a simulated WordPress site served in the foreground.

`python manage.py wpsim --port 8089 --records 1000 --seed 1 --key KEY [--change-every 60]`
runs a simulated WordPress site (wpsim) in the foreground until Ctrl-C. Faults can be set at
start (`--fault`, repeatable) or later over HTTP (POST /__sim/faults with the site key).
"""

from django.core.management.base import BaseCommand, CommandError

from wpsim import FAULT_KINDS, SimulatedSite, serve


def parse_fault(spec: str) -> dict:
    """`KIND[,name=value...]`, e.g. `status,status=503,endpoint=articles,nth=3,count=2`,
    `latency,seconds=0.5,every=1`, `plugin_missing`."""
    kind, *pairs = spec.split(",")
    options: dict = {"kind": kind.strip()}
    if options["kind"] not in FAULT_KINDS:
        raise CommandError(f"unknown fault {kind!r}; one of: {', '.join(FAULT_KINDS)}")
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"fault option {pair!r} must look like name=value")
        name = name.strip()
        if name == "endpoint":
            options[name] = value
        elif name == "every":
            options[name] = value.lower() not in ("0", "false", "no")
        elif name == "count":
            options[name] = None if value.lower() in ("none", "every") else int(value)
        elif name in ("nth", "status", "retry_after"):
            options[name] = int(value)
        elif name == "seconds":
            options[name] = float(value)
        else:
            raise CommandError(f"unknown fault option {name!r}")
    return options


class Command(BaseCommand):
    help = "Run a simulated WordPress site with the Association App plugin (for demos and tests)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8089)
        parser.add_argument("--records", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--key", required=True, help="the sync API key the site accepts")
        parser.add_argument("--name", default="Simulated Safety Association")
        parser.add_argument(
            "--change-every",
            type=float,
            default=None,
            metavar="SECONDS",
            help="edit/add/delete a few random records every SECONDS",
        )
        parser.add_argument(
            "--rate-limit", type=int, default=0, help="requests per rolling 60 s (0 = off)"
        )
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="KIND[,opt=val...]",
            help=f"inject a fault at start; kinds: {', '.join(FAULT_KINDS)}",
        )
        parser.add_argument("--tls", action="store_true", help="serve https (self-signed)")
        parser.add_argument("--verbose", action="store_true", help="log every request")

    def handle(self, *args, **options):
        faults = [parse_fault(spec) for spec in options["fault"]]
        if options["records"] < 0:
            raise CommandError("--records must be >= 0")
        site = SimulatedSite(
            records=options["records"],
            seed=options["seed"],
            key=options["key"],
            name=options["name"],
            rate_limit=options["rate_limit"],
        )
        for fault in faults:
            site.inject(fault.pop("kind"), **fault)
        try:
            server = serve(
                site,
                host=options["host"],
                port=options["port"],
                tls=options["tls"],
                change_every=options["change_every"],
                verbose=options["verbose"],
            )
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from None
        counts = ", ".join(f"{n} {t}" for t, n in site.state()["counts"].items())
        self.stdout.write(f"wpsim: {server.url}/ serving {counts}")
        if options["change_every"]:
            self.stdout.write(f"wpsim: changing a few records every {options['change_every']:g} s")
        self.stdout.flush()
        server.serve_forever()

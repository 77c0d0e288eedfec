"""wpsim: a simulated WordPress site running the Association App plugin (contract v1).

Plain Python (no Django). In-process use::

    from wpsim import SimulatedSite, serve

    site = SimulatedSite(records=1000, seed=1, key="k" * 32)
    with serve(site) as server:          # 127.0.0.1, free port, background thread
        server.url                        # "http://127.0.0.1:54321"
        site.edit("article", 3)           # changes, using site.clock (freeze/advance in tests)
        site.tamper("article", 12, title="x")   # a direct SQL UPDATE: no incremental sees it
        site.inject("status", endpoint="articles", status=503, nth=2)   # faults
        site.bad_count("event")           # deliberately bad records (wpsim.data.BAD_RULES)
        # WordPress's changes that leave modified_gmt alone reach only the change log (§5.7):
        site.schedule("article", when)    # a scheduled post: its modified_gmt is `when`
        site.cron_publish("article", 12)  # the cron publishes it, modified_gmt unchanged
        site.change_quietly("event", 14, venue="B")  # meta/terms/role set outside a save
        site.prune_changes(40); site.restart_change_log()   # a log with a gap, restarted

Out of process: ``python manage.py wpsim --port 8089 --records 1000 --seed 1 --key KEY``
(``--fault KIND[,opt=val...]``, ``--change-every SECONDS``, ``--rate-limit N``, ``--tls``).
The control API takes the site key in ``X-Association-Sync-Key`` (the key given at start keeps
working after a rotation) and JSON bodies:

- ``POST /__sim/faults`` ``{"kind": "status", "status": 503, "endpoint": "articles", "nth": 2,
  "count": 1}`` (``"every": true`` for every request); ``GET`` lists, ``DELETE`` clears them
- ``POST /__sim/changes`` ``{"action": "edit"|"add"|"delete", "entity_type": "event", "n": 3}``
  or ``{"action": "random"}``
- ``POST /__sim/key`` ``{"key": "new"}`` (omit for a random one): the old key gets 401
- ``POST /__sim/clock`` ``{"advance": 60}`` / ``{"freeze": "2026-01-15T12:00:00"}``
- ``GET /__sim/state``, ``GET /__sim/writes``, ``GET /__sim/records/<entity_type>/<id>``

Fault kinds: see wpsim.site.FAULT_KINDS.
"""

from .data import BAD_FIELDS, BAD_RULES
from .server import SimServer, serve
from .site import FAULT_KINDS, Fault, SimulatedSite, SiteClock

__all__ = [
    "BAD_FIELDS",
    "BAD_RULES",
    "FAULT_KINDS",
    "Fault",
    "SimServer",
    "SimulatedSite",
    "SiteClock",
    "serve",
]

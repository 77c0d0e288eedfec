"""Helpers shared by the reliability tests (broker inspection, free ports, processes)."""

import base64
import json
import socket

from records.models import RECORD_MODELS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def queues() -> tuple[str, ...]:
    """Both Celery queues of this process (syncjobs/routing.py: full syncs and imports wait in
    the bulk one); each xdist worker has its own pair (config/test_settings.py)."""
    from django.conf import settings

    return (settings.CELERY_TASK_DEFAULT_QUEUE, settings.SYNC_BULK_QUEUE)


def enqueued_tasks() -> list[dict]:
    """Messages waiting in the real broker queues, decoded: [{"task", "args", "kwargs"}]."""
    from config.celery import app

    out = []
    with app.connection_for_write() as conn:
        client = conn.default_channel.client  # the redis-py client of the kombu channel
        raws = [raw for queue in queues() for raw in client.lrange(queue, 0, -1)]
        for raw in raws:
            message = json.loads(raw)
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args, kwargs, _embed = json.loads(body)
            out.append(
                {"task": message["headers"]["task"], "args": args, "kwargs": kwargs, "raw": raw}
            )
    return out


def purge_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(*queues())


def site_order(site, entity_type) -> list[dict]:
    """The site's records in sync order (modified_gmt, id)."""
    records, page = [], 1
    while True:
        items, total = site.query(entity_type, page=page, per_page=100)
        records += [json.loads(item) for item in items]
        if len(records) >= total or not items:
            return records
        page += 1


def good_ids(site, entity_type) -> list[str]:
    """Ids the platform must hold: all but the simulator's deliberately bad records, and
    (slugs are unique per organisation) every later record reusing an earlier one's slug —
    the simulator deliberately serves duplicate slugs."""
    bad = site.bad_ids(entity_type)
    seen, good = set(), []
    for record in site_order(site, entity_type):
        if record["id"] in bad:
            continue
        slug = record.get("slug") if RECORD_MODELS[entity_type].has_slug else ""
        if slug and slug in seen:
            continue
        seen.add(slug)
        good.append(str(record["id"]))
    return good

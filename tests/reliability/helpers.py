"""Helpers shared by the reliability tests (broker inspection, free ports, processes)."""

import base64
import json
import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _channel_queue():
    from config.celery import app

    conn = app.connection_for_write()
    return conn, conn.default_channel


def enqueued_tasks(queue: str = "celery") -> list[dict]:
    """Messages waiting in the real broker queue, decoded: [{"task", "args", "kwargs"}]."""
    from config.celery import app

    out = []
    with app.connection_for_write() as conn:
        client = conn.default_channel.client  # the redis-py client of the kombu channel
        for raw in client.lrange(queue, 0, -1):
            message = json.loads(raw)
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args, kwargs, _embed = json.loads(body)
            out.append(
                {"task": message["headers"]["task"], "args": args, "kwargs": kwargs, "raw": raw}
            )
    return out


def purge_broker(queue: str = "celery") -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(queue)

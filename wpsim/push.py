"""The plugin's push (contract §15), simulated: subscriptions and the signed change POSTs.

The plugin sends at most one push per WordPress request, after the request finished. The
simulator has no requests around its edits (tests call SimulatedSite.edit() directly), so a
sender thread plays that part: every change sets an event, and the thread sends one POST per
subscription each time it wakes, so a burst of edits becomes a few pushes, never one each.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request

from connectors.wordpress import contract

MAX_SUBSCRIPTIONS = 20  # as the plugin: several connectors may share one site


def signed_request(url: str, secret: str, event: str) -> urllib.request.Request:
    body = json.dumps({"event": event}).encode()
    stamp = f"{time.time():.6f}"
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    # subscribe() accepts only http(s) URLs, so no file: or custom scheme gets here.
    return urllib.request.Request(  # noqa: S310
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            contract.PUSH_TIMESTAMP_HEADER: stamp,
            contract.PUSH_SIGNATURE_HEADER: signature.hexdigest(),
        },
    )


def send(url: str, secret: str, event: str, timeout: float = 5) -> tuple[int | None, str]:
    """(status, error) of one push; status None when the platform could not be reached."""
    try:
        request = signed_request(url, secret, event)
        with urllib.request.urlopen(request, timeout=timeout) as r:  # noqa: S310 (http(s) only)
            return r.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"the platform answered {exc.code}"
    except (OSError, ValueError) as exc:
        return None, str(exc)


class Pusher:
    """A site's push subscriptions ({url: secret}) and its sender thread."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, str] = {}
        self.sent: list[tuple[str, int | None]] = []  # (url, status) of every change push
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def subscribe(self, url: str, secret: str, test: bool) -> tuple[int, dict]:
        if not url.startswith(("http://", "https://")) or not secret:
            return 400, {
                "code": "rest_invalid_param",
                "message": "url (http or https) and secret are required.",
                "data": {"status": 400},
            }
        with self._lock:
            self.subscriptions.pop(url, None)
            if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
                self.subscriptions.pop(next(iter(self.subscriptions)))
            self.subscriptions[url] = secret
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wpsim-push", daemon=True)
                self._thread.start()
        answer = {"subscribed": True}
        if test:
            status, error = send(url, secret, "test")
            reachable = status is not None and 200 <= status < 300
            answer.update(reachable=reachable, status=status, error="" if reachable else error)
        return 200, answer

    def changed(self) -> None:
        """A hook saw a change: a push follows (coalesced with the others of the burst)."""
        if self.subscriptions:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                targets = list(self.subscriptions.items())
            for url, secret in targets:
                status, _ = send(url, secret, "changes")
                self.sent.append((url, status))

"""How a test waits for something another thread or process does: it polls the condition until
a deadline and fails naming what never happened, instead of sleeping a guessed time that is
too long on an idle machine and too short on a busy one (the suite runs in parallel)."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    detail: Callable[[], str] = str,
) -> T:
    """Return the first truthy value of `condition()`, checked every `interval` seconds; after
    `timeout` seconds raise AssertionError("timed out … waiting for `what`") with `detail()`
    (a worker's log, say) appended."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = detail()
            message = f"timed out after {timeout:g} s waiting for {what}"
            raise AssertionError(f"{message}\n{extra}" if extra else message)
        time.sleep(interval)

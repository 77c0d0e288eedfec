"""Maps a page of WordPress records, in this process or in a child process of its own.

Mapping (sanitising, converting, hashing) is pure computation and was half of a cold sync's
Python CPU: in the worker it shares one interpreter lock with the page lookups, the
decisions and the writer thread, so the worker used one core while the other waited. A
large phase maps its pages in a child process instead (`ProcessMapper`), on the other core,
while the worker decides and writes the previous page.

The child is a plain interpreter running this module (`python -m syncjobs.engine.mapper`),
started with subprocess rather than multiprocessing: Celery's prefork workers are daemonic
processes, which multiprocessing refuses to let have children, and a fresh interpreter
inherits none of the worker's threads or connections. It imports the mapping only (no
Django): it starts in a tenth of a second. Requests and answers are length-prefixed pickles
over its stdin and stdout; both ends are this module, in processes of the same worker.

Nothing is lost when the child fails: a page it cannot answer (it crashed, was killed, or
its answer is unreadable) is mapped in this process, and the rest of the phase too.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncjobs.engine.mapping import FieldSpec, MappedRecord, fingerprint, map_record

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("!Q")
_ROOT = Path(__file__).resolve().parents[2]


def map_page(entity_type: str, specs: tuple[FieldSpec, ...], items: list) -> list[MappedRecord]:
    """Every record of a page mapped (map_record never raises on bad input: a bad record
    comes back with its errors) and fingerprinted, in order."""
    return [fingerprint(map_record(entity_type, item, specs, detail=False)) for item in items]


# A mapped record on the wire: its fields as a tuple. Unpickling dataclass instances cost
# the worker a third more than tuples of the same values (measured), and the worker reads
# every record the child maps.
def _packed(records: list[MappedRecord]) -> list[tuple]:
    return [
        (r.external_id, r.modified_gmt, r.values, r.errors, r.digest, r.payload) for r in records
    ]


def _unpacked(entity_type: str, packed: list[tuple]) -> list[MappedRecord]:
    return [
        MappedRecord(entity_type, external_id, modified, values, [], errors, digest, payload)
        for external_id, modified, values, errors, digest, payload in packed
    ]


class InlineMapper:
    """Maps in the calling thread, at once."""

    def submit(self, entity_type: str, specs: tuple[FieldSpec, ...], items: list) -> Callable:
        mapped = map_page(entity_type, specs, items)
        return lambda: mapped

    def drain(self) -> None:
        pass

    def close(self) -> None:
        pass


class ProcessMapper:
    """Maps in a child process, started at the first page and stopped by close().

    submit() sends a page and returns at once; calling what it returns waits for that page's
    records. The engine's prefetch thread submits, its main thread takes the answers in the
    same order: the child maps page n+1 while the prefetch thread fetches page n+2. Each
    answer carries its request's number, so an answer nobody took (a page fetched ahead of
    a phase that ended) is never taken for another page's.
    """

    def __init__(self) -> None:
        self._child: subprocess.Popen | None = None
        self._sent = 0  # numbers of the requests sent
        self._read = 0  # number of the last answer read
        self.failed = False  # the child failed once: every later page is mapped inline

    def submit(self, entity_type: str, specs: tuple[FieldSpec, ...], items: list) -> Callable:
        if not self.failed:
            try:
                child = self._start()
                number = self._sent + 1
                request = (number, entity_type, specs, items)
                _send(child.stdin, pickle.dumps(request, pickle.HIGHEST_PROTOCOL))
                self._sent = number
                return lambda: self._answer(child, number, entity_type, specs, items)
            except Exception as exc:  # any failure of the child: map here
                self._give_up(exc)
        return InlineMapper().submit(entity_type, specs, items)

    def _answer(self, child, number: int, entity_type: str, specs, items: list) -> list:
        try:
            while child is self._child and self._read < number:
                answered, ok, answer = self._next_answer(child)
                if answered == number:
                    if ok:
                        return _unpacked(entity_type, answer)
                    raise RuntimeError(answer)
        except Exception as exc:  # any failure of the child: map here
            self._give_up(exc)
        return map_page(entity_type, specs, items)

    def _next_answer(self, child) -> tuple[int, bool, Any]:
        answered, ok, answer = pickle.loads(_receive(child.stdout))  # noqa: S301 - our child
        self._read = answered
        return answered, ok, answer

    def drain(self) -> None:
        """Reads and drops the answers nobody will ask for (pages fetched ahead of a phase
        that ended): the child would otherwise block writing them, and the next phase's
        first request with it."""
        try:
            while self._child is not None and self._read < self._sent:
                self._next_answer(self._child)
        except Exception as exc:  # any failure of the child: the next phase maps here
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        if not self.failed:
            logger.warning("mapping process failed (%s); mapping in the worker", exc)
        self.failed = True
        self.close()

    def _start(self) -> subprocess.Popen:
        if self._child is None:
            path = [str(_ROOT), os.environ.get("PYTHONPATH", "")]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
            self._child = subprocess.Popen(  # this interpreter, this module
                [sys.executable, "-m", "syncjobs.engine.mapper"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=_ROOT,
                env=env,
            )
        return self._child

    def close(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        try:
            child.stdin.close()  # the child's loop ends at end of input
            child.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
            child.wait()
        child.stdout.close()


def _send(stream, data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream) -> bytes:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the mapping process ended")
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the mapping process ended mid-answer")
    return data


def serve(requests, answers) -> None:
    """The child's loop: a page in, its mapped records out, until the input ends."""
    while True:
        try:
            request = _receive(requests)
        except EOFError:
            return
        number = 0
        try:
            number, entity_type, specs, items = pickle.loads(request)  # noqa: S301 - our parent
            answer = (number, True, _packed(map_page(entity_type, specs, items)))
        except Exception as exc:  # reported to the parent, which maps that page itself
            answer = (number, False, f"{type(exc).__name__}: {exc}")
        _send(answers, pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)

"""The engine's prefetch thread (syncjobs.engine.core.Prefetched): it fetches one page ahead,
and close() ends it at once, without fetching more."""

import threading

from syncjobs.engine import core
from tests.waiting import wait_until


class EndlessPages:
    """A source that always has a next page, counts what it served and whether it was closed."""

    def __init__(self):
        self.served = 0
        self.closed = threading.Event()

    def __iter__(self):
        return self

    def __next__(self):
        self.served += 1
        return f"page {self.served}"

    def close(self):
        self.closed.set()


def test_close_ends_the_thread_without_fetching_more():
    # The thread only waits to be given work (the next page, or closing the source), never
    # on a timer: a poll interval delayed the end of every job that stopped in the middle of
    # a type (a cancel, a failed page).
    source = EndlessPages()
    pages = core.Prefetched(source)

    assert next(pages) == "page 1"
    # Page 2 is fetched ahead while page 1 is processed; then the thread waits to be asked.
    wait_until(lambda: source.served == 2, timeout=10, what="the page fetched ahead")

    assert pages.close() is True  # the source is closed, in the thread
    assert source.closed.is_set()
    assert source.served == 2  # nothing fetched after close(); page 2 is dropped


def test_a_source_error_is_raised_at_its_page_and_the_source_is_closed():
    class FailingAtPage3(EndlessPages):
        def __next__(self):
            if self.served == 2:
                raise ValueError("page 3 failed")
            return super().__next__()

    source = FailingAtPage3()
    pages = core.Prefetched(source)

    assert [next(pages), next(pages)] == ["page 1", "page 2"]
    try:
        next(pages)
    except ValueError as exc:
        assert str(exc) == "page 3 failed"
    else:
        raise AssertionError("the source's error was not raised")
    assert pages.close() is True
    assert source.closed.is_set()

"""The mapping process: a large phase maps its pages in a child process, with the same
results as in the worker, and nothing is lost when the child fails."""

import json
import logging
import os
import signal

import pytest

from connectors.wordpress import contract
from syncjobs.engine import mapper as mapper_module
from syncjobs.engine.mapper import InlineMapper, ProcessMapper
from syncjobs.engine.mapping import MAPPINGS
from syncjobs.models import SyncJob
from tests.engine.conftest import logs

ARTICLE = MAPPINGS["article"]


def served(site, entity_type: str, per_page: int = 100) -> list:
    """A page of the site's records, as the client decodes them."""
    rows, _total = site.query(entity_type, per_page=per_page)
    return [json.loads(row) for row in rows]


def page_of_articles(site, *, odd=True) -> list:
    items = served(site, "article")
    if odd:
        # What a broken plugin can send: each must come back failed, never raise.
        items += [
            "not an object",
            {"modified_gmt": "2026-01-01T00:00:00", "title": "no id"},
            {"id": 9001, "modified_gmt": "2026-02-30T00:00:00", "title": "bad date"},
            {"id": 9002, "modified_gmt": "2026-01-01T00:00:00", "title": "lone \ud800"},
            {"id": 9003, "modified_gmt": "2026-01-01T00:00:00"},  # no title
        ]
    return items


def as_compared(records) -> list:
    return [
        (r.external_id, r.modified_gmt, r.values, r.errors, r.payload, r.digest) for r in records
    ]


@pytest.fixture
def process_mapper():
    mapper = ProcessMapper()
    yield mapper
    mapper.close()


def test_the_child_maps_a_page_exactly_as_the_worker_does(site, process_mapper):
    items = page_of_articles(site)

    in_child = process_mapper.submit("article", ARTICLE, items)()
    in_worker = InlineMapper().submit("article", ARTICLE, items)()

    assert not process_mapper.failed
    assert as_compared(in_child) == as_compared(in_worker)
    failed = {r.external_id: r.errors for r in in_child if r.errors}
    assert any("modified_gmt" in " ".join(e) for e in failed.values())
    assert any("surrogate" in " ".join(e) for e in failed.values())
    assert any("'title' is missing" in " ".join(e) for e in failed.values())
    # The five above and the site's own bad article (wpsim plants one).
    assert len([r for r in in_child if not r.ok]) == 5 + site.bad_count("article")


def test_answers_come_in_order_and_unread_ones_are_dropped(site, process_mapper):
    pages = [served(site, t, 20) for t in ("article", "member", "event")]
    later = [
        process_mapper.submit(t, MAPPINGS[t], items)
        for t, items in zip(("article", "member", "event"), pages, strict=True)
    ]
    # The second page's answer is asked for first: the first one is read and dropped.
    members = later[1]()
    assert [r.entity_type for r in members] == ["member"] * len(pages[1])
    assert [r.external_id for r in members] == [str(i["id"]) for i in pages[1]]

    process_mapper.drain()  # the event page is answered and dropped, unread
    notifications = served(site, "notification", 5)
    mapped = process_mapper.submit("notification", MAPPINGS["notification"], notifications)()
    assert [r.external_id for r in mapped] == [str(i["id"]) for i in notifications]
    assert not process_mapper.failed


def test_a_killed_child_costs_nothing_the_pages_are_mapped_in_the_worker(
    site, process_mapper, caplog
):
    items = page_of_articles(site, odd=False)
    expected = as_compared(InlineMapper().submit("article", ARTICLE, items)())
    assert as_compared(process_mapper.submit("article", ARTICLE, items)()) == expected
    child = process_mapper._child
    sent = process_mapper.submit("article", ARTICLE, items)  # in flight when it dies
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)

    with caplog.at_level(logging.WARNING, logger="syncjobs.engine.mapper"):
        assert as_compared(sent()) == expected
        assert as_compared(process_mapper.submit("article", ARTICLE, items)()) == expected
    assert process_mapper.failed
    assert process_mapper._child is None
    assert "mapping process failed" in caplog.text


def test_close_ends_the_child(site, process_mapper):
    process_mapper.submit("article", ARTICLE, page_of_articles(site, odd=False))()
    child = process_mapper._child
    process_mapper.close()
    assert child.poll() is not None


@pytest.fixture
def children(monkeypatch):
    """The mapping processes started, each checked to have ended by the end of the job."""
    started = []
    real_popen = mapper_module.subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(mapper_module.subprocess, "Popen", popen)
    return started


def test_a_large_phase_maps_in_a_child_with_the_same_results(
    sync, connector, site, settings, children
):
    settings.SYNC_MAPPER_PROCESS_MIN = None
    inline = sync(connector)
    assert children == []
    inline_rows = sorted(logs(inline).values_list("entity_type", "external_id", "status", "error"))

    settings.SYNC_MAPPER_PROCESS_MIN = 20  # every phase but the 10 conferences and 16 companies
    job = sync(connector)

    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert len(children) == 1, "one child serves every large phase of a run"
    assert children[0].poll() is not None, "the child ends with the run"
    # Same decisions as the inline run: every record seen again, now unchanged.
    rows = sorted(logs(job).values_list("entity_type", "external_id", "status", "error"))
    assert [r[:2] for r in rows] == [r[:2] for r in inline_rows]
    assert {r[2] for r in rows} == {"SKIPPED", "FAILED"}
    assert [r for r in rows if r[2] == "FAILED"] == [r for r in inline_rows if r[2] == "FAILED"]
    assert job.totals()["failed"] == inline.totals()["failed"] > 0


def test_small_phases_map_in_the_worker(sync, connector, settings, children):
    settings.SYNC_MAPPER_PROCESS_MIN = 2000
    job = sync(connector)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert children == []


def test_the_setting_reads_off_or_a_number(monkeypatch):
    import importlib

    import config.settings as project_settings

    try:
        monkeypatch.setenv("SYNC_MAPPER_PROCESS_MIN", "off")
        assert importlib.reload(project_settings).SYNC_MAPPER_PROCESS_MIN is None
        monkeypatch.setenv("SYNC_MAPPER_PROCESS_MIN", "500")
        assert importlib.reload(project_settings).SYNC_MAPPER_PROCESS_MIN == 500
    finally:
        monkeypatch.undo()
        importlib.reload(project_settings)
    assert contract.ENTITY_TYPES  # the reload left the rest alone

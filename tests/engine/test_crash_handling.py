"""Issue 19, case 1 in the worker: an invalid host name or any unexpected exception in a job's
task ends that job FAILED at once, with a reason in words and a logged traceback, never left
RUNNING for the sweeper; a featured image redirecting to an invalid host fails that record
only. Real simulator on loopback and PostgreSQL; respx fakes only the image host."""

import logging

import httpx
import pytest
import respx

from connectors.models import Connector
from connectors.wordpress.media import ImageDownloader
from syncjobs import metrics, runner, services
from syncjobs.models import SyncJob
from syncjobs.tasks import run_sync_job
from tests.conftest import make_connector

from .conftest import SIM_KEY, log_for, logs

IMAGE_HOST = "http://93.184.216.34"


@pytest.fixture(autouse=True)
def no_stranded_job(db):
    """Every test of the file ends with no job left RUNNING: the figure docs/reliability.md
    quotes ("0 stranded jobs") is this assertion, not a reading of the logs."""
    yield
    stranded = SyncJob.objects.filter(status=SyncJob.Status.RUNNING)
    assert not stranded.exists(), [(job.pk, job.error) for job in stranded]


def run_as_the_worker(connector) -> SyncJob:
    """What Celery does with a queued job: the task, with its own client."""
    job = services.start_sync(connector, SyncJob.Kind.FULL)
    run_sync_job(job.pk)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("site_url", ["http://xn--a.example", "http://xn--localhost-/x"])
def test_a_job_for_an_invalid_idna_site_url_fails_at_once_in_words(org_a, site_url):
    # Saved before the forms refused such names (or by a script): the worker must cope.
    connector = make_connector(org_a, site_url=site_url, api_key=SIM_KEY)
    job = run_as_the_worker(connector)
    assert job.status == SyncJob.Status.FAILED
    assert "host name is not valid" in job.error
    assert not SyncJob.objects.filter(connector=connector, status__in=SyncJob.ACTIVE_STATUSES)
    # Nothing blocks the next sync of the connector.
    assert services.start_sync(connector, SyncJob.Kind.FULL).status == SyncJob.Status.PENDING


def test_any_exception_in_the_job_set_up_fails_the_job_with_its_traceback(
    connector, monkeypatch, caplog
):
    def broken_plan(job, connector):
        raise KeyError("a bug nobody foresaw")

    monkeypatch.setattr(runner, "build_plan", broken_plan)
    with caplog.at_level(logging.ERROR, logger="syncjobs.runner"):
        job = run_as_the_worker(connector)
    assert job.status == SyncJob.Status.FAILED
    assert job.finished_at is not None
    assert job.error.startswith("Internal error (KeyError: 'a bug nobody foresaw')")
    assert "records processed before were kept" in job.error
    crash = next(r for r in caplog.records if "crashed" in r.getMessage())
    assert crash.exc_info is not None  # the traceback is in the log
    connector.refresh_from_db()
    assert f"job #{job.pk}) failed: Internal error" in connector.status_message


def test_an_exception_before_the_run_fails_the_job_at_once(connector, monkeypatch, caplog):
    # Between the claim and the run (the schedule-lag metric): the job is RUNNING already.
    def broken_metric(job, due_at):
        raise RuntimeError("metrics backend gone")

    monkeypatch.setattr(metrics, "job_started", broken_metric)
    with caplog.at_level(logging.ERROR, logger="syncjobs.runner"):
        job = run_as_the_worker(connector)
    assert job.status == SyncJob.Status.FAILED
    assert job.error.startswith("Internal error (RuntimeError: metrics backend gone)")
    assert any(r.exc_info for r in caplog.records if "crashed" in r.getMessage())
    connector.refresh_from_db()
    assert connector.status == Connector.Status.ERROR
    assert services.start_sync(connector, SyncJob.Kind.FULL).status == SyncJob.Status.PENDING


@pytest.mark.parametrize("outcome", ["run completed", "run failed"])
def test_an_exception_while_ending_the_job_still_ends_it_failed(
    connector, monkeypatch, caplog, outcome
):
    # finish() updates the connector in one transaction with the job's end: when that update
    # raises, the job's own row must still leave RUNNING, with the reason.
    def broken_schedule(self, now):
        raise ValueError("bad frequency in the row")

    monkeypatch.setattr(Connector, "compute_next_sync_at", broken_schedule)
    if outcome == "run failed":
        monkeypatch.setattr(
            runner, "execute", lambda job, **_: (SyncJob.Status.FAILED, "The site is down.")
        )
    with caplog.at_level(logging.ERROR, logger="syncjobs.runner"):
        job = run_as_the_worker(connector)
    assert job.status == SyncJob.Status.FAILED
    assert job.finished_at is not None
    if outcome == "run failed":
        assert job.error == "The site is down."  # the run's own reason, not the bookkeeping's
    else:
        assert job.error.startswith("Internal error (ValueError: bad frequency in the row)")
    assert any(r.exc_info for r in caplog.records if "could not be ended" in r.getMessage())
    connector.refresh_from_db()
    assert connector.status == Connector.Status.ERROR
    assert f"job #{job.pk}) failed" in connector.status_message


def test_an_image_redirecting_to_an_invalid_host_fails_that_record_only(
    sync, site, server, connector
):
    connector.mirror_images = True
    connector.entity_types = ["article"]
    connector.save()
    good = [i for i in site.ids("article") if i not in site.bad_ids("article")]
    hostile, plain = good[0], good[1]
    site.update("article", hostile, slug="hostile-img", featured_image_url=f"{IMAGE_HOST}/a.png")
    site.update("article", plain, slug="plain-img", featured_image_url="")
    with respx.mock(assert_all_called=True) as mock:
        mock.get(f"{IMAGE_HOST}/a.png").respond(
            302, headers={"Location": "http://xn--localhost-/x"}
        )
        mock.route(host="127.0.0.1").pass_through()  # the simulator itself
        job = sync(connector)
    assert job.status == SyncJob.Status.COMPLETED
    entry = log_for(job, "article", hostile)
    assert entry.status == "FAILED"
    assert "could not be downloaded: the site redirected it to an invalid URL" in entry.error
    assert log_for(job, "article", plain).status == "SUCCESS"
    # The phase went on past it: every article of the site has its log row.
    assert logs(job, entity_type="article").count() == len(site.ids("article"))


def test_the_image_downloader_turns_an_invalid_redirect_into_a_refusal():
    with respx.mock:
        respx.get(f"{IMAGE_HOST}/b.png").respond(302, headers={"Location": "http://xn--a.example/"})
        with pytest.raises(Exception) as excinfo:
            ImageDownloader().fetch(f"{IMAGE_HOST}/b.png")
    assert type(excinfo.value).__name__ == "MirrorFailed"
    assert "redirected it to an invalid URL" in str(excinfo.value)
    assert not isinstance(excinfo.value, UnicodeError | httpx.HTTPError)

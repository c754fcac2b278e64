"""In a real browser: preparing a large payroll file shows its progress, then the download."""

import threading
from types import SimpleNamespace

import pytest
from django.db import connection
from playwright.sync_api import expect

from marketplace.models import LedgerEntry
from marketplace.services import payroll, payroll_jobs
from tests.conftest import sign_in
from tests.web.conftest import weeks_of_work

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("short_lived_db_connections")]


@pytest.fixture
def a_worker_we_can_pause(monkeypatch):
    """Celery replaced by a thread that runs the job, writing one CSV row per chunk and
    pausing after the first until the test says ``go`` (a worker mid-way through)."""
    go = threading.Event()
    threads = []
    original = payroll.export_chunks

    def held(period_id, result=None):
        for i, chunk in enumerate(original(period_id, result)):
            if i == 1:
                go.wait(timeout=30)
            yield chunk

    def delay(job_id):
        def run():
            try:
                payroll_jobs.payroll_job_run(job_id=job_id)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)

    monkeypatch.setattr(payroll, "CHUNK_ROWS", 1)
    monkeypatch.setattr(payroll, "export_chunks", held)
    monkeypatch.setattr("marketplace.tasks.run_payroll_job", SimpleNamespace(delay=delay))
    yield go
    go.set()
    for thread in threads:
        thread.join(timeout=30)


def test_a_large_export_shows_its_progress_then_the_download(
    new_page, staff, agent, other_agent, settings, a_worker_we_can_pause, tmp_path
):
    # given: a closed week with two agents paid, "large" for this test
    weeks_of_work(agent, tickets_per_week=(2,))
    weeks_of_work(other_agent, tickets_per_week=(1,))
    period = LedgerEntry.objects.earliest("created_at").period
    payroll.pay_period_close(period_id=period.pk, actor=staff)
    settings.HUMANLINE = {**settings.HUMANLINE, "PAYROLL_EXPORT_INLINE_MAX_ENTRIES": 0}
    page = new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    sign_in(page, staff.email)
    page.goto("/ops/#pay-periods")
    row = page.get_by_test_id(f"period-{period.pk}")
    expect(row.get_by_role("link", name="Export CSV")).to_have_count(0)

    # when: staff ask for the file, and the worker is half-way through
    row.get_by_role("button", name="Prepare CSV").click()

    # then: the row shows the rows written so far on a bar, without a reload
    job = row.get_by_test_id("job-export")
    expect(job).to_contain_text("Writing rows: 1 of 2")
    expect(job.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "50")
    expect(row.get_by_role("button", name="Prepare CSV")).to_have_count(0)
    page.evaluate("window.__marker = 'same page'")

    # when: the worker finishes
    a_worker_we_can_pause.set()

    # then: the download link appears, and the file has the bytes of every export
    expect(row).to_contain_text("CSV ready: 2 rows.")
    with page.expect_download() as download:
        row.get_by_role("link", name="Download CSV").click()
    saved = tmp_path / "prepared.csv"
    download.value.save_as(saved)
    assert saved.read_bytes() == b"".join(payroll.export_chunks(period.pk))
    assert page.evaluate("window.__marker") == "same page"
    assert errors == []

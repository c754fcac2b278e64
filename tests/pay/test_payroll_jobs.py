"""Closing and exporting in the background: the job, its progress, its file, its pages."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from config.errors import InvalidTransition
from marketplace.models import (
    LedgerEntry,
    PayPeriod,
    PayrollExport,
    PayrollJob,
    PayrollJobKind,
    PayrollJobStatus,
)
from marketplace.services import ledger, payroll, payroll_jobs
from tests.factories import AgentFactory
from tests.pay.helpers import accepted_and_resolved

pytestmark = pytest.mark.django_db

NEXT_MONDAY = datetime(2030, 1, 14, 9, tzinfo=UTC)
JOBS = "/api/v1/admin/payroll-jobs/"
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def week(worker, clock):
    """Given: a week in which the agent resolved a payments ticket (2.50 EUR)."""
    accepted_and_resolved(worker, category="payments")
    return LedgerEntry.objects.get().period


@pytest.fixture
def ended(week, clock):
    clock.move_to(NEXT_MONDAY)
    return week


@pytest.fixture
def closed(ended, staff):
    return payroll.pay_period_close(period_id=ended.pk, actor=staff)


@pytest.fixture
def run_after_commit(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def start(period, kind, actor, capture):
    with capture(execute=True):
        job = payroll_jobs.payroll_job_start(period_id=period.pk, kind=kind, actor=actor)
    job.refresh_from_db()
    return job


# --- the service ---------------------------------------------------------------------


def test_closing_in_the_background_freezes_the_week_and_counts_its_entries(
    ended, staff, django_capture_on_commit_callbacks
):
    job = start(ended, PayrollJobKind.CLOSE, staff, django_capture_on_commit_callbacks)

    ended.refresh_from_db()
    assert ended.status == "closed" and ended.closed_by == staff
    assert job.status == PayrollJobStatus.DONE and job.started_at and job.finished_at
    assert job.rows_done == job.rows_total == ended.entry_count == 1
    assert payroll_jobs.job_status_text(job) == "Closed: 1 entries frozen."


def test_a_week_that_has_not_ended_is_refused_at_once_and_no_job_is_left(week, staff):
    with pytest.raises(InvalidTransition) as error:
        payroll_jobs.payroll_job_start(period_id=week.pk, kind="close", actor=staff)
    assert error.value.code == "period_not_ended"
    assert "close it after" in error.value.message
    assert not PayrollJob.objects.exists()


def test_closing_a_closed_week_or_exporting_an_open_one_is_refused(ended, staff):
    with pytest.raises(InvalidTransition) as error:
        payroll_jobs.payroll_job_start(period_id=ended.pk, kind="export", actor=staff)
    assert error.value.code == "period_open"
    payroll.pay_period_close(period_id=ended.pk, actor=staff)
    with pytest.raises(InvalidTransition) as error:
        payroll_jobs.payroll_job_start(period_id=ended.pk, kind="close", actor=staff)
    assert error.value.code == "period_closed"


def test_a_second_click_joins_the_job_under_way(ended, staff, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as enqueued:
        first = payroll_jobs.payroll_job_start(period_id=ended.pk, kind="close", actor=staff)
        second = payroll_jobs.payroll_job_start(period_id=ended.pk, kind="close", actor=None)
    assert first.pk == second.pk and second.status == PayrollJobStatus.QUEUED
    assert len(enqueued) == 1


def test_a_job_whose_worker_vanished_is_failed_and_started_again(ended, staff, clock):
    lost = payroll_jobs.payroll_job_start(period_id=ended.pk, kind="close", actor=staff)
    clock.shift(payroll_jobs.stale_after() + timedelta(seconds=1))

    fresh = payroll_jobs.payroll_job_start(period_id=ended.pk, kind="close", actor=staff)

    lost.refresh_from_db()
    assert fresh.pk != lost.pk and fresh.status == PayrollJobStatus.QUEUED
    assert lost.status == PayrollJobStatus.FAILED and lost.error_code == "stalled"


def test_a_job_whose_task_was_lost_is_run_by_the_sweep_a_minute_later(ended, staff, clock):
    # Queued, and its task never published (Redis down at the commit): no commit
    # runs the enqueue in a test, as none reached the broker there.
    lost = payroll_jobs.payroll_job_start(period_id=ended.pk, kind="close", actor=staff)

    assert payroll_jobs.payroll_jobs_requeue() == 0  # its own task may still be on its way
    clock.shift(payroll_jobs.REQUEUE_AFTER)
    assert payroll_jobs.payroll_jobs_requeue() == 1

    lost.refresh_from_db()
    ended.refresh_from_db()
    assert lost.status == PayrollJobStatus.DONE and ended.status == "closed"
    assert payroll_jobs.payroll_jobs_requeue() == 0  # nothing left queued


def test_a_redelivered_task_does_nothing_the_second_time(closed, staff):
    job = PayrollJob.objects.create(period=closed, kind="export", created_by=staff)
    assert payroll_jobs.payroll_job_run(job_id=job.pk).status == PayrollJobStatus.DONE
    assert payroll_jobs.payroll_job_run(job_id=job.pk) is None
    assert PayrollExport.objects.count() == 1


def test_a_job_that_breaks_says_so_and_the_week_can_be_closed_again(
    ended, staff, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(payroll, "pay_period_close", broken)
    job = start(ended, "close", staff, django_capture_on_commit_callbacks)
    assert job.status == PayrollJobStatus.FAILED and job.error_code == "error"
    assert payroll_jobs.job_status_text(job) == "Something went wrong on our side; try again."

    monkeypatch.undo()
    again = start(ended, "close", staff, django_capture_on_commit_callbacks)
    assert again.status == PayrollJobStatus.DONE


@pytest.fixture
def many_agents_closed(worker, staff, clock):
    """A closed week with five agents paid (adjustments), the CSV then has five rows."""
    for i in range(4):
        other = AgentFactory(user__email=f"agent{i}@example.org")
        ledger.adjustment_create(actor=staff, agent_id=other.pk, amount=f"{i + 1}.00", reason="x")
    accepted_and_resolved(worker, category="payments")
    period = LedgerEntry.objects.first().period
    clock.move_to(NEXT_MONDAY)
    return payroll.pay_period_close(period_id=period.pk, actor=staff)


def test_the_prepared_csv_has_the_same_bytes_and_reports_rows_as_it_writes_them(
    many_agents_closed, staff, monkeypatch
):
    monkeypatch.setattr(payroll, "CHUNK_ROWS", 2)
    expected = b"".join(payroll.export_chunks(many_agents_closed.pk))
    job = PayrollJob.objects.create(period=many_agents_closed, kind="export", created_by=staff)
    seen = []
    original = payroll.export_chunks

    def watched(period_id, result=None):
        for chunk in original(period_id, result):
            seen.append(PayrollJob.objects.values_list("rows_done", "rows_total").get(pk=job.pk))
            yield chunk

    monkeypatch.setattr(payroll, "export_chunks", watched)

    done = payroll_jobs.payroll_job_run(job_id=job.pk)

    assert done.status == PayrollJobStatus.DONE and done.rows_done == done.rows_total == 5
    assert [done for done, _ in seen] == [0, 2, 4]  # read before each chunk is written
    assert {total for _, total in seen} == {5}
    with payroll_jobs.payroll_job_file(job=done) as handle:
        prepared = handle.read()
    assert prepared == expected
    audit = PayrollExport.objects.get()
    assert done.export == audit and audit.channel == "ops" and audit.created_by == staff
    assert audit.sha256 == hashlib.sha256(expected).hexdigest() and audit.row_count == 5


def test_a_newer_file_replaces_the_older_one(closed, staff):
    first = PayrollJob.objects.create(period=closed, kind="export", created_by=staff)
    payroll_jobs.payroll_job_run(job_id=first.pk)
    second = PayrollJob.objects.create(period=closed, kind="export", created_by=staff)
    second = payroll_jobs.payroll_job_run(job_id=second.pk)
    first.refresh_from_db()
    with pytest.raises(InvalidTransition) as error:
        payroll_jobs.payroll_job_file(job=first)
    assert error.value.code == "file_replaced"
    assert payroll_jobs.payroll_job_file(job=second).read().startswith(b"agent_id,")
    assert PayrollExport.objects.count() == 2


# --- the API ------------------------------------------------------------------------


def test_staff_close_through_a_job_and_poll_it(api, staff, ended, run_after_commit):
    with run_after_commit(execute=True):
        response = api.as_(staff).post(
            f"/api/v1/admin/pay-periods/{ended.pk}/jobs/", {"kind": "close"}, format="json"
        )
    assert response.status_code == 202
    job = response.json()
    # Celery runs eagerly in the tests, so the work is done when the answer comes.
    polled = api.as_(staff).get(f"{JOBS}{job['id']}/").json()
    assert polled["status"] == "done" and polled["progress"] == 1.0
    assert polled["kind"] == "close" and polled["error"] is None
    assert polled["download_url"] is None


def test_a_job_the_period_does_not_allow_is_a_409_with_the_reason(api, staff, week):
    response = api.as_(staff).post(
        f"/api/v1/admin/pay-periods/{week.pk}/jobs/", {"kind": "export"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "period_open"


def test_staff_download_the_prepared_file(api, staff, closed, run_after_commit):
    with run_after_commit(execute=True):
        response = api.as_(staff).post(
            f"/api/v1/admin/pay-periods/{closed.pk}/jobs/", {"kind": "export"}, format="json"
        )
    assert response.status_code == 202
    job = api.as_(staff).get(f"{JOBS}{response.json()['id']}/").json()
    assert job["status"] == "done" and job["status_text"] == "CSV ready: 1 row."

    response = api.as_(staff).get(job["download_url"])

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert b"".join(response.streaming_content) == b"".join(payroll.export_chunks(closed.pk))


def test_a_file_not_ready_is_a_409(api, staff, closed):
    job = PayrollJob.objects.create(period=closed, kind="export", created_by=staff)
    response = api.as_(staff).get(f"{JOBS}{job.pk}/download/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_ready"


@pytest.mark.parametrize("persona", ["agent", "customer"])
def test_only_staff_start_poll_and_download_jobs(api, request, closed, staff, persona):
    job = PayrollJob.objects.create(period=closed, kind="export", created_by=staff)
    client = api.as_(request.getfixturevalue(persona))
    assert (
        client.post(f"/api/v1/admin/pay-periods/{closed.pk}/jobs/", {"kind": "export"}).status_code
        == 403
    )
    assert client.get(f"{JOBS}{job.pk}/").status_code == 403
    assert client.get(f"{JOBS}{job.pk}/download/").status_code == 403


# --- the floor's pay-period card ------------------------------------------------------


def test_the_floor_lists_the_periods_with_the_action_each_allows(client, staff, worker, clock):
    # Given: a closed week, a week that ended but is open, and the current week
    accepted_and_resolved(worker, category="payments")
    clock.move_to(NEXT_MONDAY)
    accepted_and_resolved(worker, category="general")
    clock.move_to(NEXT_MONDAY + timedelta(days=7))
    accepted_and_resolved(worker, category="general")
    first, second, current = PayPeriod.objects.order_by("starts_at")
    payroll.pay_period_close(period_id=first.pk, actor=staff)
    client.force_login(staff)

    html = client.get("/ops/pay-periods/").content.decode()

    def row(period):
        start = html.index(f'data-period="{period.pk}"')
        return html[start : html.index("</tr>", start)]

    assert "Closed" in row(first) and "Export CSV" in row(first) and "€2.50" in row(first)
    assert "Close week" in row(second) and "Ended · to close" in row(second)
    assert "Close week" not in row(current) and "Runs until" in row(current)
    assert "Export CSV" not in row(second) + row(current)


def test_the_close_button_answers_json_for_the_script_and_redirects_without_it(
    client, staff, ended, run_after_commit
):
    client.force_login(staff)
    url = f"/ops/pay-periods/{ended.pk}/close/"

    with run_after_commit(execute=True):
        answer = client.post(url, **JSON)

    assert answer.status_code == 202 and answer.json()["job"]["kind"] == "close"
    assert PayrollJob.objects.get(pk=answer.json()["job"]["id"]).status == "done"
    refused = client.post(url, **JSON)
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == "This pay period is already closed."
    plain = client.post(url, follow=True)
    assert plain.redirect_chain[0][0] == "/ops/#pay-periods"
    assert "This pay period is already closed." in plain.content.decode()


def test_a_small_closed_week_downloads_at_once_with_the_same_bytes(client, staff, closed):
    client.force_login(staff)

    response = client.get(f"/ops/pay-periods/{closed.pk}/export.csv")

    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert b"".join(response.streaming_content) == b"".join(payroll.export_chunks(closed.pk))
    assert PayrollExport.objects.get().channel == "ops"


def test_a_large_closed_week_is_prepared_first(client, staff, closed, settings, run_after_commit):
    settings.HUMANLINE = {**settings.HUMANLINE, "PAYROLL_EXPORT_INLINE_MAX_ENTRIES": 0}
    client.force_login(staff)
    assert "Prepare CSV" in client.get("/ops/pay-periods/").content.decode()

    with run_after_commit(execute=True):
        client.post(f"/ops/pay-periods/{closed.pk}/prepare/", **JSON)

    html = client.get("/ops/pay-periods/").content.decode()
    job = PayrollJob.objects.get(kind="export")
    assert "CSV ready: 1 row." in html and f"/api/v1/admin/payroll-jobs/{job.pk}/download/" in html
    assert "Prepare again" in html


def test_a_job_under_way_shows_its_progress_to_every_staff_page(client, staff, closed, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "PAYROLL_EXPORT_INLINE_MAX_ENTRIES": 0}
    PayrollJob.objects.create(
        period=closed, kind="export", status="running", rows_total=400, rows_done=100
    )
    client.force_login(staff)

    html = client.get("/ops/pay-periods/").content.decode()

    assert 'aria-valuenow="25"' in html and "Writing rows: 100 of 400" in html
    assert 'data-active="true"' in html and "Prepare CSV" not in html


@pytest.mark.parametrize("persona", ["agent", "customer"])
def test_the_pay_period_pages_are_for_staff_only(client, request, closed, persona):
    person = request.getfixturevalue(persona)
    client.force_login(getattr(person, "user", person))
    assert client.get("/ops/pay-periods/").status_code == 302
    assert client.post(f"/ops/pay-periods/{closed.pk}/prepare/").status_code == 302
    assert client.get(f"/ops/pay-periods/{closed.pk}/export.csv").status_code == 302
    assert not PayrollExport.objects.exists()


def test_an_unknown_kind_of_job_is_a_400(api, staff, closed):
    response = api.as_(staff).post(
        f"/api/v1/admin/pay-periods/{closed.pk}/jobs/", {"kind": "delete"}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_kind"
    assert not PayrollJob.objects.exists()


def test_a_long_job_still_writing_rows_is_not_taken_for_a_lost_one(closed, staff, clock):
    from django.utils import timezone

    started = timezone.now()
    job = PayrollJob.objects.create(
        period=closed, kind="export", status="running", started_at=started, rows_total=10
    )
    clock.shift(payroll_jobs.stale_after() * 2)
    PayrollJob.objects.filter(pk=job.pk).update(rows_done=5, heartbeat_at=timezone.now())

    again = payroll_jobs.payroll_job_start(period_id=closed.pk, kind="export", actor=staff)

    assert again.pk == job.pk and again.status == PayrollJobStatus.RUNNING


def test_staff_see_the_jobs_in_the_admin_and_change_none(client, staff, closed):
    failed = PayrollJob.objects.create(
        period=closed,
        kind="export",
        status="failed",
        created_by=staff,
        error_code="storage_unavailable",
        error_message="The private storage refused the file.",
    )
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)

    listing = client.get("/django-admin/marketplace/payrolljob/?status__exact=failed")
    page = client.get(f"/django-admin/marketplace/payrolljob/{failed.pk}/change/")

    assert listing.status_code == 200 and b"storage_unavailable" in listing.content
    assert page.status_code == 200 and b"The private storage refused the file." in page.content
    assert b'name="_save"' not in page.content
    assert client.get("/django-admin/marketplace/payrolljob/add/").status_code == 403
    deleted = client.post(
        f"/django-admin/marketplace/payrolljob/{failed.pk}/delete/", {"post": "yes"}
    )
    assert deleted.status_code == 403 and PayrollJob.objects.filter(pk=failed.pk).exists()

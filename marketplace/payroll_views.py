"""Pay periods on the operations floor: close, export and prepare, with progress.

The card (``templates/marketplace/_pay_periods.html``) is rendered with the
floor and again alone at ``/ops/pay-periods/``, which ``static/js/payroll.js``
fetches to redraw it.  Its forms post here: a plain form post redirects back
to the floor with a message; the script asks for JSON and shows the job's
progress by polling ``GET /api/v1/admin/payroll-jobs/{id}/``.
"""

from django.contrib import messages
from django.contrib.auth.decorators import user_passes_test
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from config.api import error_body
from config.errors import DomainError
from marketplace import pay_selectors
from marketplace.models import PayPeriod, PayrollJob, PayrollJobKind
from marketplace.services import payroll, payroll_jobs

staff_required = user_passes_test(lambda u: u.is_authenticated and u.is_operations)

JOB_KINDS = {"close": PayrollJobKind.CLOSE, "prepare": PayrollJobKind.EXPORT}


def job_data(job: PayrollJob) -> dict:
    """A job as the page and the API show it."""
    return {
        "id": job.pk,
        "period_id": job.period_id,
        "kind": job.kind,
        "status": job.status,
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "progress": job.progress,
        "status_text": payroll_jobs.job_status_text(job),
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "download_url": reverse("api-payroll-job-download", args=[job.pk])
        if job.kind == PayrollJobKind.EXPORT and job.status == "done" and job.file_name
        else None,
    }


def pay_periods_context() -> dict:
    return {
        "pay_periods": pay_selectors.floor_pay_periods(
            inline_max=payroll_jobs.inline_export_max_entries()
        )
    }


@staff_required
def ops_pay_periods(request):
    return render(request, "marketplace/_pay_periods.html", pay_periods_context())


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@staff_required
@require_POST
def ops_pay_period_job(request, period_id: int, action: str):
    kind = JOB_KINDS.get(action)
    if kind is None:
        raise Http404
    period = get_object_or_404(PayPeriod, pk=period_id)
    try:
        job = payroll_jobs.payroll_job_start(period_id=period.pk, kind=kind, actor=request.user)
    except DomainError as exc:
        if _wants_json(request):
            return JsonResponse(error_body(exc.code, exc.message), status=exc.status_code)
        messages.error(request, exc.message)
        return redirect(reverse("ops-floor") + "#pay-periods")
    job.refresh_from_db()  # the eager task may have run it already
    if _wants_json(request):
        return JsonResponse({"job": job_data(job)}, status=202)
    messages.info(request, payroll_jobs.job_status_text(job))
    return redirect(reverse("ops-floor") + "#pay-periods")


@staff_required
def ops_pay_period_export(request, period_id: int):
    """The closed period's CSV, streamed at once (the same bytes as every other export)."""
    period = get_object_or_404(PayPeriod, pk=period_id)
    try:
        chunks = payroll.payroll_export(
            period_id=period.pk, actor=request.user, channel=payroll_jobs.EXPORT_CHANNEL
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(reverse("ops-floor") + "#pay-periods")
    return payroll.streaming_response(request, chunks, payroll.export_filename(period))


def job_file_response(job: PayrollJob) -> FileResponse:
    handle = payroll_jobs.payroll_job_file(job=job)
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=payroll.export_filename(job.period),
        content_type="text/csv; charset=utf-8",
    )
    response["Cache-Control"] = "no-store"
    return response

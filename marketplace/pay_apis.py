"""HTTP API for pay: an agent's earnings; staff adjustments, pay periods and payroll export."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import get_object_or_404
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent
from config import params
from config.api import PaginatedAPIView
from config.permissions import IsAgentUser, IsOperations
from config.schema import error
from marketplace import pay_selectors as selectors
from marketplace.models import PayPeriod, PayrollJob, PayrollJobStatus
from marketplace.pay_selectors import money
from marketplace.payroll_views import job_data, job_file_response
from marketplace.services import ledger, payroll, payroll_jobs

# --- serializers ---------------------------------------------------------------------


class MoneyField(serializers.Serializer):
    amount = serializers.CharField(help_text='Decimal as text, e.g. "2.50".')
    currency = serializers.CharField()


class TotalsOutput(serializers.Serializer):
    currency = serializers.CharField()
    by_kind = serializers.DictField(child=MoneyField(), help_text="One money per entry kind.")
    counts = serializers.DictField(child=serializers.IntegerField())
    total = MoneyField()


class PeriodOutput(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    status = serializers.CharField()


def period_data(period: PayPeriod) -> dict:
    return {
        "id": period.pk,
        "starts_at": period.starts_at,
        "ends_at": period.ends_at,
        "status": period.status,
    }


def totals_data(totals) -> list[dict]:
    return [
        {"currency": t.currency, "by_kind": t.by_kind, "counts": t.counts, "total": t.total}
        for t in totals
    ]


class EntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    money = MoneyField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    ticket = serializers.DictField(allow_null=True)
    reverses = serializers.IntegerField(allow_null=True)


def entry_data(entry) -> dict:
    ticket = entry.ticket
    return {
        "id": entry.pk,
        "kind": entry.kind,
        "money": money(entry.amount, entry.currency),
        "reason": entry.reason,
        "created_at": entry.created_at,
        "ticket": {"id": ticket.pk, "subject": ticket.subject} if ticket else None,
        "reverses": entry.reverses_id,
    }


class PastPeriodOutput(PeriodOutput):
    totals = TotalsOutput(many=True)


class EarningsOutput(serializers.Serializer):
    period = PeriodOutput()
    totals = TotalsOutput(many=True)
    entries = EntryOutput(many=True)
    past_periods = PastPeriodOutput(many=True)


def earnings_data(earnings) -> dict:
    return {
        "period": period_data(earnings.period),
        "totals": totals_data(earnings.totals),
        "entries": [entry_data(e) for e in earnings.entries],
        "past_periods": [
            {**period_data(p), "totals": totals_data(t)} for p, t in earnings.past_periods
        ],
    }


class AdjustmentInput(serializers.Serializer):
    amount = serializers.CharField(help_text='Positive or negative, e.g. "-2.50".')
    currency = serializers.CharField(required=False, max_length=3)
    reason = serializers.CharField(max_length=1000)


class AdjustmentOutput(EntryOutput):
    agent_id = serializers.IntegerField()
    created_by = serializers.CharField()
    period = PeriodOutput()


class ExportOutput(serializers.Serializer):
    sha256 = serializers.CharField()
    row_count = serializers.IntegerField()
    byte_count = serializers.IntegerField()
    channel = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(allow_null=True)


class StaffPeriodOutput(PeriodOutput):
    closed_at = serializers.DateTimeField(allow_null=True)
    closed_by = serializers.CharField(allow_null=True)
    entry_count = serializers.IntegerField(allow_null=True)
    totals = serializers.DictField(child=MoneyField(), help_text="Currency → total, once closed.")
    exports = ExportOutput(many=True)


def staff_period_data(period: PayPeriod) -> dict:
    return {
        **period_data(period),
        "closed_at": period.closed_at,
        "closed_by": period.closed_by.email if period.closed_by_id else None,
        "entry_count": period.entry_count,
        "totals": {code: money(total, code) for code, total in period.totals.items()},
        "exports": [
            {
                "sha256": e.sha256,
                "row_count": e.row_count,
                "byte_count": e.byte_count,
                "channel": e.channel,
                "created_at": e.created_at,
                "created_by": e.created_by.email if e.created_by_id else None,
            }
            for e in period.exports.all()
        ],
    }


# --- agents ------------------------------------------------------------------------


class MyEarningsView(APIView):
    """The current period's totals by kind, its entries with their tickets, past periods."""

    permission_classes = [IsAgentUser]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "period",
                {"type": "integer", "minimum": 1, "maximum": params.MAX_ID},
                description="A past period's id; by default the current one.",
            )
        ],
        responses={200: EarningsOutput, 404: error("No such pay period (`not_found`).")},
        tags=["pay"],
    )
    def get(self, request):
        period_id = params.integer(request.query_params, "period")
        try:
            earnings = selectors.agent_earnings(agent=request.user.agent, period_id=period_id)
        except PayPeriod.DoesNotExist as exc:
            raise NotFound("No such pay period.") from exc
        return Response(earnings_data(earnings))


# --- staff ---------------------------------------------------------------------------


class AdminAdjustmentView(APIView):
    """Adjust an agent's earnings up or down, with a reason; the entry records who and why."""

    permission_classes = [IsOperations]

    @extend_schema(request=AdjustmentInput, responses={201: AdjustmentOutput}, tags=["pay"])
    def post(self, request, agent_id: int):
        agent = get_object_or_404(Agent, pk=agent_id)
        data = AdjustmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        entry = ledger.adjustment_create(
            actor=request.user,
            agent_id=agent.pk,
            amount=data.validated_data["amount"],
            currency_code=data.validated_data.get("currency"),
            reason=data.validated_data["reason"],
        )
        body = {
            **entry_data(entry),
            "agent_id": agent.pk,
            "created_by": request.user.email,
            "period": period_data(entry.period),
        }
        return Response(body, status=status.HTTP_201_CREATED)


class AdminPayPeriodsView(PaginatedAPIView):
    permission_classes = [IsOperations]

    @extend_schema(responses={200: StaffPeriodOutput(many=True)}, tags=["pay"])
    def get(self, request):
        return self.paginated(
            selectors.pay_periods().select_related("closed_by"),
            lambda page: [staff_period_data(p) for p in page],
        )


class AdminPayPeriodCloseView(APIView):
    """Add the engaged-time floor top-ups and freeze the period.  Repeating it is harmless."""

    permission_classes = [IsOperations]

    @extend_schema(
        request=None,
        responses={
            200: StaffPeriodOutput,
            409: error("The week has not ended yet (`period_not_ended`)."),
        },
        tags=["pay"],
    )
    def post(self, request, period_id: int):
        get_object_or_404(PayPeriod, pk=period_id)
        payroll.pay_period_close(period_id=period_id, actor=request.user)
        period = selectors.pay_periods().select_related("closed_by").get(pk=period_id)
        return Response(staff_period_data(period))


class CSVRenderer(BaseRenderer):
    """Lets a client ask for ``Accept: text/csv``; errors still go out as JSON bodies."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)


class AdminPayPeriodExportView(APIView):
    """The closed period's payroll as CSV, streamed; 409 while the period is open."""

    permission_classes = [IsOperations]
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            409: error("The period is open (`period_open`): close it first."),
        },
        tags=["pay"],
    )
    def get(self, request, period_id: int):
        period = get_object_or_404(PayPeriod, pk=period_id)
        chunks = payroll.payroll_export(period_id=period.pk, actor=request.user, channel="api")
        return payroll.streaming_response(request, chunks, payroll.export_filename(period))


# --- background payroll jobs (the floor's close and export, with progress) ----------


class JobInput(serializers.Serializer):
    kind = serializers.CharField(help_text='"close" or "export" (prepare the payroll CSV).')


class JobError(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class JobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    period_id = serializers.IntegerField()
    kind = serializers.CharField(help_text='"close" or "export".')
    status = serializers.ChoiceField(choices=PayrollJobStatus.choices)
    rows_done = serializers.IntegerField()
    rows_total = serializers.IntegerField(allow_null=True)
    progress = serializers.FloatField(
        allow_null=True, help_text="0 to 1 when the amount of work is known, else null."
    )
    status_text = serializers.CharField()
    error = JobError(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    download_url = serializers.CharField(allow_null=True)


class AdminPayPeriodJobsView(APIView):
    """Close a period or prepare its CSV in the background; poll the job for progress.

    Answers 202 with the job, or with the job already under way for the same
    work; 409 when the period's state does not allow it.
    """

    permission_classes = [IsOperations]

    @extend_schema(
        request=JobInput,
        responses={
            202: JobOutput,
            409: error(
                "The period's state does not allow this work: closed already, not ended yet,"
                " or open when exporting."
            ),
        },
        tags=["pay"],
    )
    def post(self, request, period_id: int):
        period = get_object_or_404(PayPeriod, pk=period_id)
        data = JobInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = payroll_jobs.payroll_job_start(
            period_id=period.pk, kind=data.validated_data["kind"], actor=request.user
        )
        job.refresh_from_db()
        return Response(job_data(job), status=status.HTTP_202_ACCEPTED)


class AdminPayrollJobView(APIView):
    permission_classes = [IsOperations]

    @extend_schema(responses={200: JobOutput}, tags=["pay"])
    def get(self, request, job_id: int):
        return Response(job_data(get_object_or_404(PayrollJob, pk=job_id)))


class AdminPayrollJobDownloadView(APIView):
    """The CSV a finished export job prepared; 409 while it is not ready."""

    permission_classes = [IsOperations]
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            409: error(
                "No file yet (`not_ready`: not an export, or not finished), or a newer export"
                " replaced it (`file_replaced`)."
            ),
        },
        tags=["pay"],
    )
    def get(self, request, job_id: int):
        job = get_object_or_404(PayrollJob.objects.select_related("period"), pk=job_id)
        return job_file_response(job)

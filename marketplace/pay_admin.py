"""Django admin for pay: the ledger is read-only; periods close and export through the services.

Imported by ``marketplace/admin.py``.  No admin page adds, changes or deletes
a ledger entry: a correction is an adjustment (the API), a new entry.
"""

from django.contrib import admin, messages

from config.errors import DomainError
from marketplace.models import LedgerEntry, PayPeriod, PayrollExport, PayrollJob
from marketplace.services import payroll


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "agent", "kind", "amount", "currency", "period", "ticket", "created_at"]
    list_filter = ["kind", "currency", "period"]
    search_fields = ["agent__user__email", "reason"]
    raw_id_fields = ["agent", "ticket", "offer", "assignment", "booking", "rating", "reverses"]
    date_hierarchy = "created_at"
    list_select_related = ["agent__user", "period", "ticket"]


@admin.action(description="Close the selected pay periods (floor top-ups, then freeze)")
def close_periods(modeladmin, request, queryset):
    for period in queryset.order_by("starts_at"):
        try:
            payroll.pay_period_close(period_id=period.pk, actor=request.user)
        except DomainError as exc:
            modeladmin.message_user(request, f"{period}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{period}: closed.", messages.SUCCESS)


@admin.action(description="Export payroll CSV (one closed period)")
def export_payroll(modeladmin, request, queryset):
    if queryset.count() != 1:
        modeladmin.message_user(request, "Select exactly one pay period.", messages.ERROR)
        return None
    period = queryset.get()
    try:
        chunks = payroll.payroll_export(period_id=period.pk, actor=request.user, channel="admin")
    except DomainError as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return None
    return payroll.streaming_response(request, chunks, payroll.export_filename(period))


class ExportInline(admin.TabularInline):
    model = PayrollExport
    extra = 0
    can_delete = False
    fields = ["created_at", "created_by", "channel", "row_count", "byte_count", "sha256"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PayPeriod)
class PayPeriodAdmin(ReadOnlyAdmin):
    list_display = ["starts_at", "ends_at", "status", "closed_at", "entry_count", "totals"]
    list_filter = ["status"]
    actions = [close_periods, export_payroll]
    inlines = [ExportInline]

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff


@admin.register(PayrollExport)
class PayrollExportAdmin(ReadOnlyAdmin):
    list_display = ["period", "created_at", "created_by", "channel", "row_count", "sha256"]
    list_select_related = ["period", "created_by"]


@admin.register(PayrollJob)
class PayrollJobAdmin(ReadOnlyAdmin):
    """Background closes and exports, for looking into one that failed or stalled.

    Started from the pay-period pages or the API (``services.payroll_jobs``);
    the worker alone moves them on, so the admin only shows them.
    """

    list_display = [
        "id",
        "period",
        "kind",
        "status",
        "created_by",
        "created_at",
        "heartbeat_at",
        "finished_at",
        "rows_done",
        "rows_total",
        "error_code",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["error_code", "error_message", "created_by__email"]
    list_select_related = ["period", "created_by"]
    raw_id_fields = ["period", "created_by", "export"]
    date_hierarchy = "created_at"

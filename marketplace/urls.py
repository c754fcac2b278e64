from django.urls import path

from config import params  # noqa: F401 (registers the <id:…> converter)
from marketplace import apis, dispatch_apis, floor_views, pay_apis, staffing_apis

api_urlpatterns = [
    path("admin/shifts/", apis.AdminShiftsView.as_view(), name="api-admin-shifts"),
    path("admin/shifts/week/", apis.AdminShiftWeekView.as_view(), name="api-admin-shifts-week"),
    path(
        "admin/shifts/<id:slot_id>/",
        apis.AdminShiftDetailView.as_view(),
        name="api-admin-shift",
    ),
    path(
        "admin/shifts/<id:slot_id>/cancel/",
        apis.AdminShiftCancelView.as_view(),
        name="api-admin-shift-cancel",
    ),
    path(
        "admin/agents/<id:agent_id>/attendance/",
        apis.AdminAgentAttendanceView.as_view(),
        name="api-admin-agent-attendance",
    ),
    path("shifts/", apis.ShiftBoardView.as_view(), name="api-shifts"),
    path("shifts/mine/", apis.MyShiftsView.as_view(), name="api-my-shifts"),
    path("shifts/<id:slot_id>/book/", apis.ShiftBookView.as_view(), name="api-shift-book"),
    path("shifts/<id:slot_id>/cancel/", apis.ShiftCancelView.as_view(), name="api-shift-cancel"),
    path("agents/me/attendance/", apis.MyAttendanceView.as_view(), name="api-my-attendance"),
    path("offers/", dispatch_apis.MyOffersView.as_view(), name="api-offers"),
    path(
        "offers/<id:offer_id>/accept/",
        dispatch_apis.OfferAcceptView.as_view(),
        name="api-offer-accept",
    ),
    path(
        "offers/<id:offer_id>/decline/",
        dispatch_apis.OfferDeclineView.as_view(),
        name="api-offer-decline",
    ),
    path(
        "offers/<id:offer_id>/seen/",
        dispatch_apis.OfferSeenView.as_view(),
        name="api-offer-seen",
    ),
    path("admin/floor/", floor_views.FloorView.as_view(), name="api-admin-floor"),
    path("admin/staffing/", staffing_apis.StaffingDayView.as_view(), name="api-admin-staffing"),
    path(
        "admin/staffing/erlang/",
        staffing_apis.StaffingErlangView.as_view(),
        name="api-admin-staffing-erlang",
    ),
    path(
        "admin/staffing/publish/",
        staffing_apis.StaffingPublishView.as_view(),
        name="api-admin-staffing-publish",
    ),
    path("pricing/surge/", dispatch_apis.SurgeView.as_view(), name="api-surge"),
    path("pricing/rates/", dispatch_apis.RateCardView.as_view(), name="api-rates"),
    # Pay
    path("agents/me/earnings/", pay_apis.MyEarningsView.as_view(), name="api-my-earnings"),
    path(
        "admin/agents/<id:agent_id>/adjustments/",
        pay_apis.AdminAdjustmentView.as_view(),
        name="api-admin-agent-adjustments",
    ),
    path("admin/pay-periods/", pay_apis.AdminPayPeriodsView.as_view(), name="api-pay-periods"),
    path(
        "admin/pay-periods/<id:period_id>/close/",
        pay_apis.AdminPayPeriodCloseView.as_view(),
        name="api-pay-period-close",
    ),
    path(
        "admin/pay-periods/<id:period_id>/export.csv",
        pay_apis.AdminPayPeriodExportView.as_view(),
        name="api-pay-period-export",
    ),
    path(
        "admin/pay-periods/<id:period_id>/jobs/",
        pay_apis.AdminPayPeriodJobsView.as_view(),
        name="api-pay-period-jobs",
    ),
    path(
        "admin/payroll-jobs/<id:job_id>/",
        pay_apis.AdminPayrollJobView.as_view(),
        name="api-payroll-job",
    ),
    path(
        "admin/payroll-jobs/<id:job_id>/download/",
        pay_apis.AdminPayrollJobDownloadView.as_view(),
        name="api-payroll-job-download",
    ),
]

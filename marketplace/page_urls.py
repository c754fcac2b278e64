from django.urls import path

from config import params  # noqa: F401 (registers the <id:…> converter)
from marketplace import floor_views, pay_views, payroll_views, views

urlpatterns = [
    path("agent/shifts/", views.agent_board, name="agent-shifts"),
    path("agent/shifts/<id:slot_id>/book/", views.agent_book, name="agent-shift-book"),
    path("agent/shifts/<id:slot_id>/cancel/", views.agent_cancel, name="agent-shift-cancel"),
    path("agent/presence/", views.agent_presence, name="agent-presence"),
    path("ops/", floor_views.ops_floor, name="ops-floor"),
    path("ops/pay-periods/", payroll_views.ops_pay_periods, name="ops-pay-periods"),
    path(
        "ops/pay-periods/<id:period_id>/export.csv",
        payroll_views.ops_pay_period_export,
        name="ops-pay-period-export",
    ),
    path(
        "ops/pay-periods/<id:period_id>/<slug:action>/",
        payroll_views.ops_pay_period_job,
        name="ops-pay-period-job",
    ),
    path("agent/earnings/", pay_views.agent_earnings, name="agent-earnings"),
    path("agent/earnings/card/", pay_views.agent_earnings_card, name="agent-earnings-card"),
    path("staff/shifts/", views.staff_planner, name="staff-shifts"),
    path("staff/shifts/publish/", views.staff_publish_slot, name="staff-shifts-publish"),
    path("staff/shifts/week/", views.staff_publish_week, name="staff-shifts-week"),
    path("staff/shifts/missing/", views.staff_publish_missing, name="staff-shifts-missing"),
    path("staff/shifts/<id:slot_id>/cancel/", views.staff_cancel_slot, name="staff-shift-cancel"),
]

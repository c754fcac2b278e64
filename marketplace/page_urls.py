from django.urls import path

from marketplace import floor_views, pay_views, views

urlpatterns = [
    path("agent/shifts/", views.agent_board, name="agent-shifts"),
    path("agent/shifts/<int:slot_id>/book/", views.agent_book, name="agent-shift-book"),
    path("agent/shifts/<int:slot_id>/cancel/", views.agent_cancel, name="agent-shift-cancel"),
    path("agent/presence/", views.agent_presence, name="agent-presence"),
    path("ops/", floor_views.ops_floor, name="ops-floor"),
    path("agent/earnings/", pay_views.agent_earnings, name="agent-earnings"),
    path("agent/earnings/card/", pay_views.agent_earnings_card, name="agent-earnings-card"),
    path("staff/shifts/", views.staff_planner, name="staff-shifts"),
    path("staff/shifts/publish/", views.staff_publish_slot, name="staff-shifts-publish"),
    path("staff/shifts/week/", views.staff_publish_week, name="staff-shifts-week"),
    path("staff/shifts/<int:slot_id>/cancel/", views.staff_cancel_slot, name="staff-shift-cancel"),
]

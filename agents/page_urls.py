from django.contrib.auth import views as auth_views
from django.urls import path

from agents import console, views
from config import params  # noqa: F401 (registers the <id:…> converter)

urlpatterns = [
    path("apply/", views.apply, name="apply"),
    path("apply/status/", views.apply_status, name="apply-status"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Password reset: Django's own views, this site's templates.
    path("password-reset/", views.PasswordReset.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("verify-email/<str:token>/", views.verify_email, name="verify-email"),
    path("account/verification/", views.resend_verification, name="resend-verification"),
    path("agent/", console.console, name="agent-console"),
    path("agent/console/presence/", console.console_presence, name="agent-console-presence"),
    path(
        "agent/offers/<id:offer_id>/<slug:answer>/",
        console.console_offer,
        name="agent-console-offer",
    ),
    path("agent/tickets/<id:ticket_id>/", console.console_pane, name="agent-console-pane"),
    path(
        "agent/tickets/<id:ticket_id>/<slug:action>/",
        console.console_ticket_action,
        name="agent-console-ticket",
    ),
    path("staff/review/", views.staff_review, name="staff-review"),
    path("staff/review/<id:agent_id>/<slug:decision>/", views.staff_decide, name="staff-decide"),
    path("staff/documents/<uuid:document_id>/", views.staff_document, name="staff-document"),
]

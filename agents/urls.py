from django.urls import path

from agents import apis
from config import params  # noqa: F401 (registers the <id:…> converter)

api_urlpatterns = [
    path("auth/token/", apis.TokenView.as_view(), name="api-token"),
    path("customers/", apis.CustomerSignUpView.as_view(), name="api-customer-sign-up"),
    path("customers/verify/", apis.VerifyEmailView.as_view(), name="api-customer-verify"),
    path(
        "customers/me/verification/",
        apis.MyVerificationView.as_view(),
        name="api-customer-verification",
    ),
    path("skills/", apis.SkillsView.as_view(), name="api-skills"),
    path("agents/applications/", apis.ApplicationView.as_view(), name="api-agent-apply"),
    path("agents/me/", apis.MyApplicationView.as_view(), name="api-agent-me"),
    path("agents/me/documents/", apis.MyDocumentsView.as_view(), name="api-agent-documents"),
    path("agents/me/presence/", apis.MyPresenceView.as_view(), name="api-agent-presence"),
    path("admin/agents/", apis.ReviewQueueView.as_view(), name="api-review-queue"),
    path("admin/agents/<id:agent_id>/", apis.ReviewDetailView.as_view(), name="api-review-detail"),
    path("admin/agents/<id:agent_id>/approve/", apis.ApproveView.as_view(), name="api-approve"),
    path("admin/agents/<id:agent_id>/reject/", apis.RejectView.as_view(), name="api-reject"),
    path("admin/agents/<id:agent_id>/suspend/", apis.SuspendView.as_view(), name="api-suspend"),
    path(
        "admin/agents/<id:agent_id>/reinstate/",
        apis.ReinstateView.as_view(),
        name="api-reinstate",
    ),
    path(
        "admin/documents/<uuid:document_id>/",
        apis.DocumentDownloadView.as_view(),
        name="api-document",
    ),
    path("realtime/tickets/", apis.RealtimeTicketView.as_view(), name="api-realtime-ticket"),
]

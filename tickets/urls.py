from django.urls import path

from config import params  # noqa: F401 (registers the <id:…> converter)
from tickets import apis, views

api_urlpatterns = [
    path("tickets/", apis.TicketsView.as_view(), name="api-tickets"),
    path("tickets/<id:ticket_id>/", apis.TicketDetailView.as_view(), name="api-ticket"),
    path(
        "tickets/<id:ticket_id>/messages/",
        apis.TicketMessagesView.as_view(),
        name="api-ticket-messages",
    ),
    path("tickets/<id:ticket_id>/cancel/", apis.CancelView.as_view(), name="api-ticket-cancel"),
    path("tickets/<id:ticket_id>/resolve/", apis.ResolveView.as_view(), name="api-ticket-resolve"),
    path("tickets/<id:ticket_id>/reopen/", apis.ReopenView.as_view(), name="api-ticket-reopen"),
    path("tickets/<id:ticket_id>/rating/", apis.RatingView.as_view(), name="api-ticket-rating"),
    path(
        "tickets/<id:ticket_id>/language/",
        apis.LanguageView.as_view(),
        name="api-ticket-language",
    ),
    path(
        "tickets/<id:ticket_id>/feedback/",
        apis.TicketFeedbackView.as_view(),
        name="api-ticket-feedback",
    ),
    path("customers/me/identities/", apis.MyIdentitiesView.as_view(), name="api-my-identities"),
    path(
        "customers/me/identities/<id:identity_id>/link/",
        apis.IdentityLinkView.as_view(),
        name="api-identity-link",
    ),
    path("agents/me/quality/", apis.MyQualityView.as_view(), name="api-my-quality"),
    path(
        "admin/agents/<id:agent_id>/quality/",
        apis.AgentQualityView.as_view(),
        name="api-agent-quality",
    ),
    path("admin/feedback/", apis.FeedbackListView.as_view(), name="api-feedback"),
    path(
        "admin/integrations/keys/",
        apis.IntegrationKeysView.as_view(),
        name="api-integration-keys",
    ),
    path(
        "admin/integrations/keys/<id:key_id>/revoke/",
        apis.IntegrationKeyRevokeView.as_view(),
        name="api-integration-key-revoke",
    ),
]

page_urlpatterns = [
    path("help/", views.help_centre, name="help"),
    path("help/tickets/<id:ticket_id>/", views.ticket_page, name="help-ticket"),
    path("help/identities/<id:identity_id>/link/", views.link_identity, name="help-identity-link"),
    path(
        "help/tickets/<id:ticket_id>/<slug:action>/",
        views.ticket_action,
        name="help-ticket-action",
    ),
]
